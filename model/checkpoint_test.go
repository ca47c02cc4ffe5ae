package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/model/safetensors"
	"github.com/lavascope/lavascope/tokenizer"
)

// copyFixture copies the HF checkpoint folder into a fresh temporary folder.
func copyFixture(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ck")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors"} {
		copyFile(t, filepath.Join(fixtureDir, "checkpoint", f), filepath.Join(dir, f))
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// rewriteTensors rewrites dir/model.safetensors after edit changes its tensors.
func rewriteTensors(t *testing.T, dir string, edit func([]safetensors.Tensor) []safetensors.Tensor) {
	t.Helper()
	path := filepath.Join(dir, singleFile)
	s, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, ti := range s.Tensors() {
		b, _ := s.Bytes(ti.Name)
		ts = append(ts, safetensors.Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: b})
	}
	s.Close()
	if err := safetensors.Save(path, edit(ts), map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}

// patchHeader replaces old with new (same length) in the JSON header of
// dir/model.safetensors, leaving the data as it is.
func patchHeader(t *testing.T, dir, old, new string) {
	t.Helper()
	path := filepath.Join(dir, singleFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	hdr := b[8 : 8+n]
	if len(old) != len(new) || !bytes.Contains(hdr, []byte(old)) {
		t.Fatalf("cannot patch %q into %q", old, new)
	}
	copy(hdr[bytes.Index(hdr, []byte(old)):], new)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCheckpointFixture(t *testing.T) {
	ck, err := OpenCheckpoint(filepath.Join(fixtureDir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if ck.Config.Text.EOSTokenID != 499 {
		t.Errorf("config %+v", ck.Config.Text)
	}
	refs := ck.Weights.Tensors()
	if len(refs) != 78 {
		t.Fatalf("%d tensors", len(refs))
	}
	ref := refs["text_projection.weight"]
	if ref.DType != safetensors.F32 || !slices.Equal(ref.Shape, []int64{32, 64}) || !strings.HasSuffix(ref.File, singleFile) {
		t.Errorf("text_projection: %+v", ref)
	}
	v, err := ref.Float32s()
	if err != nil || len(v) != 32*64 {
		t.Fatalf("%d values, %v", len(v), err)
	}
	raw, _ := ref.Bytes()
	dec, _ := safetensors.DecodeFloat32s(safetensors.F32, raw)
	if !slices.Equal(dec, v) {
		t.Error("Bytes and Float32s disagree")
	}
}

// TestBadCheckpoints makes one corrupted copy of the fixture per class of
// problem and checks that the error names the file and the problem.
func TestBadCheckpoints(t *testing.T) {
	drop := func(name string) func([]safetensors.Tensor) []safetensors.Tensor {
		return func(ts []safetensors.Tensor) []safetensors.Tensor {
			return slices.DeleteFunc(ts, func(x safetensors.Tensor) bool { return x.Name == name })
		}
	}
	tests := []struct {
		name    string
		corrupt func(t *testing.T, dir string)
		want    []string
	}{
		{"missing key", func(t *testing.T, dir string) {
			rewriteTensors(t, dir, drop("text_model.final_layer_norm.bias"))
		}, []string{"model.safetensors does not match config.json", "missing: text_model.final_layer_norm.bias, expected shape [64]"}},
		{"unexpected key", func(t *testing.T, dir string) {
			rewriteTensors(t, dir, func(ts []safetensors.Tensor) []safetensors.Tensor {
				return append(ts, safetensors.F32Tensor("text_model.pooler.weight", []int64{2}, []float32{1, 2}))
			})
		}, []string{"unexpected: text_model.pooler.weight, shape [2]"}},
		{"shape mismatch", func(t *testing.T, dir string) {
			rewriteTensors(t, dir, func(ts []safetensors.Tensor) []safetensors.Tensor {
				for i := range ts {
					if ts[i].Name == "visual_projection.weight" {
						ts[i].Shape = []int64{64, 32}
					}
				}
				return ts
			})
		}, []string{"shape mismatch: visual_projection.weight: expected [32 64], found [64 32]"}},
		{"integer parameter", func(t *testing.T, dir string) {
			rewriteTensors(t, dir, func(ts []safetensors.Tensor) []safetensors.Tensor {
				for i := range ts {
					if ts[i].Name == "logit_scale" {
						ts[i].DType = safetensors.I32
					}
				}
				return ts
			})
		}, []string{"dtype: logit_scale is I32"}},
		{"truncated file", func(t *testing.T, dir string) {
			path := filepath.Join(dir, singleFile)
			st, _ := os.Stat(path)
			os.Truncate(path, st.Size()-100)
		}, []string{"model.safetensors: truncated", `"visual_projection.weight"`}},
		{"truncated header", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, singleFile), 1000)
		}, []string{"model.safetensors: truncated: header says"}},
		{"bad header", func(t *testing.T, dir string) {
			patchHeader(t, dir, `"logit_scale":{`, `"logit_scale":[`)
		}, []string{"model.safetensors: bad header"}},
		{"offsets overlap", func(t *testing.T, dir string) {
			patchHeader(t, dir, `"data_offsets":[4,19716]`, `"data_offsets":[0,19712]`)
		}, []string{"model.safetensors: bad header", "overlaps"}},
		{"offsets out of range", func(t *testing.T, dir string) {
			// A consistent header whose last tensor reaches past the end.
			patchHeader(t, dir, `"shape":[32,64],"data_offsets":[1620484,1628676]`, `"shape":[99,64],"data_offsets":[1620484,1645828]`)
		}, []string{"model.safetensors: truncated", `tensor "visual_projection.weight" needs data up to byte 1645828, the file has 1628676`}},
		{"dtype and shape disagree with size", func(t *testing.T, dir string) {
			patchHeader(t, dir, `"logit_scale":{"dtype":"F32"`, `"logit_scale":{"dtype":"F64"`)
		}, []string{"model.safetensors: bad header", `"logit_scale": F64 [] needs 8 bytes`}},
		{"unknown dtype", func(t *testing.T, dir string) {
			patchHeader(t, dir, `"logit_scale":{"dtype":"F32"`, `"logit_scale":{"dtype":"X32"`)
		}, []string{"model.safetensors: bad header", `unsupported dtype "X32"`}},
		{"no config", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "config.json"))
		}, []string{"no config.json"}},
		{"bad config", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"text_config": {"hidden_size": "wide"}}`), 0o644)
		}, []string{"config.json: text_config.hidden_size: want an integer"}},
		{"config disagrees", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{}`), 0o644)
		}, []string{"does not match config.json", "shape mismatch: text_model.embeddings.token_embedding.weight: expected [49408 512], found [1000 64]", "and "}},
		{"no weights", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, singleFile))
		}, []string{"no model.safetensors or model.safetensors.index.json"}},
		{"pickle only", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, singleFile))
			os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), []byte("PK"), 0o644)
		}, []string{"pytorch_model.bin is a PyTorch pickle", "save_pretrained", "safe_serialization=True"}},
		{"original OpenAI file only", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, singleFile))
			os.Remove(filepath.Join(dir, "config.json"))
			os.WriteFile(filepath.Join(dir, "ViT-B-32.pt"), []byte("PK"), 0o644)
		}, []string{"ViT-B-32.pt is a PyTorch pickle", "convert_clip_original_pytorch_to_hf.py"}},
		{"sharded, shard missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, singleFile))
			writeShards(t, dir)
			os.Remove(filepath.Join(dir, "model-00001-of-00002.safetensors"))
		}, []string{"model-00001-of-00002.safetensors: no such file", "(listed in ", "model.safetensors.index.json)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyFixture(t)
			tt.corrupt(t, dir)
			ck, err := OpenCheckpoint(dir)
			if err == nil {
				ck.Close()
				t.Fatal("opened a broken checkpoint")
			}
			t.Log(err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestWeightsErrorLists(t *testing.T) {
	dir := copyFixture(t)
	rewriteTensors(t, dir, func(ts []safetensors.Tensor) []safetensors.Tensor {
		ts = slices.DeleteFunc(ts, func(x safetensors.Tensor) bool { return x.Name == "logit_scale" })
		return append(ts, safetensors.F32Tensor("extra", nil, []float32{1}))
	})
	_, err := OpenCheckpoint(dir)
	var we *WeightsError
	if !errors.As(err, &we) {
		t.Fatalf("error %v is not a *WeightsError", err)
	}
	if len(we.Missing) != 1 || we.Missing[0].Name != "logit_scale" || len(we.Unexpected) != 1 || we.Unexpected[0].Name != "extra" {
		t.Errorf("%+v", we)
	}
}

func TestShardedCheckpointAndIgnoredBuffers(t *testing.T) {
	dir := copyFixture(t)
	rewriteTensors(t, dir, func(ts []safetensors.Tensor) []safetensors.Tensor {
		ids := make([]byte, 77*8)
		return append(ts, safetensors.Tensor{Name: "text_model.embeddings.position_ids", DType: safetensors.I64, Shape: []int64{1, 77}, Data: ids})
	})
	ck, err := OpenCheckpoint(dir)
	if err != nil {
		t.Fatalf("position_ids buffer refused: %v", err)
	}
	ck.Close()

	sharded := copyFixture(t)
	os.Remove(filepath.Join(sharded, singleFile))
	writeShards(t, sharded)
	ck, err = OpenCheckpoint(sharded)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if len(ck.Weights.Files) != 2 || len(ck.Weights.Names()) != 78 {
		t.Errorf("%d files, %d tensors", len(ck.Weights.Files), len(ck.Weights.Names()))
	}
}

// fakeCache lays out a HF hub cache entry the way huggingface_hub does: blobs
// and snapshots/<commit>/ with links into them, refs/main naming the commit.
func fakeCache(t *testing.T, hub, id, commit string) string {
	t.Helper()
	repo := filepath.Join(hub, "models--"+strings.ReplaceAll(id, "/", "--"))
	snap := filepath.Join(repo, "snapshots", commit)
	for _, d := range []string{filepath.Join(repo, "blobs"), snap, filepath.Join(repo, "refs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"config.json", "model.safetensors"} {
		blob := filepath.Join(repo, "blobs", "blob-"+f)
		copyFile(t, filepath.Join(fixtureDir, "checkpoint", f), blob)
		if err := os.Symlink(filepath.Join("..", "..", "blobs", "blob-"+f), filepath.Join(snap, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(commit), 0o644); err != nil {
		t.Fatal(err)
	}
	return snap
}

func isolateCache(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, v := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"} {
		t.Setenv(v, "")
	}
	t.Chdir(t.TempDir())
	return home
}

func TestResolveFromCache(t *testing.T) {
	home := isolateCache(t)
	const id = "openai/clip-vit-base-patch32"
	hub := filepath.Join(home, ".cache", "huggingface", "hub")
	snap := fakeCache(t, hub, id, "3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268")

	got, err := ResolveCheckpoint(id)
	if err != nil || got != snap {
		t.Fatalf("ResolveCheckpoint(%q) = %q, %v; want %q", id, got, err, snap)
	}
	ck, err := OpenCheckpoint(id)
	if err != nil {
		t.Fatal(err)
	}
	ck.Close()

	// A second revision, chosen by commit or by ref.
	snap2 := fakeCache(t, hub, id, "aaaa")
	os.WriteFile(filepath.Join(filepath.Dir(filepath.Dir(snap2)), "refs", "main"), []byte("3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268\n"), 0o644)
	if got, err := ResolveCheckpoint(id + "@aaaa"); err != nil || got != snap2 {
		t.Errorf("@aaaa: %q %v", got, err)
	}
	if got, err := ResolveCheckpoint(id); err != nil || got != snap {
		t.Errorf("refs/main: %q %v", got, err)
	}
	if _, err := ResolveCheckpoint(id + "@nope"); err == nil || !strings.Contains(err.Error(), `no ref or snapshot "nope"`) {
		t.Errorf("@nope: %v", err)
	}
	// The cache repo folder itself, and the snapshot folder, work as arguments.
	repo := filepath.Join(hub, "models--openai--clip-vit-base-patch32")
	if got, err := ResolveCheckpoint(repo); err != nil || got != snap {
		t.Errorf("repo folder: %q %v", got, err)
	}
	if got, err := ResolveCheckpoint(snap); err != nil || got != snap {
		t.Errorf("snapshot folder: %q %v", got, err)
	}

	// $HF_HOME/hub comes before ~/.cache.
	hfHome := t.TempDir()
	t.Setenv("HF_HOME", hfHome)
	other := fakeCache(t, filepath.Join(hfHome, "hub"), id, "bbbb")
	if got, err := ResolveCheckpoint(id); err != nil || got != other {
		t.Errorf("with HF_HOME: %q %v, want %q", got, err, other)
	}
	// A ref naming a snapshot that is not there is an incomplete download.
	os.WriteFile(filepath.Join(hfHome, "hub", "models--openai--clip-vit-base-patch32", "refs", "main"), []byte("cccc"), 0o644)
	if _, err := ResolveCheckpoint(id); err == nil || !strings.Contains(err.Error(), "incomplete download") {
		t.Errorf("dangling ref: %v", err)
	}
}

func TestResolveNotFound(t *testing.T) {
	home := isolateCache(t)
	hfHome := t.TempDir()
	t.Setenv("HF_HOME", hfHome)
	_, err := ResolveCheckpoint("openai/clip-vit-base-patch32")
	if err == nil {
		t.Fatal("resolved a model that is nowhere")
	}
	for _, w := range []string{
		"openai/clip-vit-base-patch32 (no such folder)",
		filepath.Join(hfHome, "hub", "models--openai--clip-vit-base-patch32") + " (absent)",
		filepath.Join(home, ".cache", "huggingface", "hub", "models--openai--clip-vit-base-patch32") + " (absent)",
		"does not download",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q:\n%v", w, err)
		}
	}
	for _, arg := range []string{"/no/such/dir", "./nope", "a/b/c", "x/../../etc"} {
		if _, err := ResolveCheckpoint(arg); err == nil || !strings.Contains(err.Error(), "no such folder") {
			t.Errorf("%s: %v", arg, err)
		}
	}
	if _, err := ResolveCheckpoint(""); err == nil {
		t.Error("empty argument accepted")
	}
}

func TestResolveFiles(t *testing.T) {
	dir := copyFixture(t)
	st := filepath.Join(dir, singleFile)
	if got, err := ResolveCheckpoint(st); err != nil || got != dir {
		t.Errorf("safetensors file: %q %v", got, err)
	}
	for _, name := range []string{"ViT-B-32.pt", "model.ckpt", "pytorch_model.bin"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("x"), 0o644)
		_, err := ResolveCheckpoint(p)
		var pe *PickleError
		if !errors.As(err, &pe) || pe.Path != p {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ResolveCheckpoint(filepath.Join(dir, "config.json")); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Errorf("config.json: %v", err)
	}
}

func TestCheckTokenizer(t *testing.T) {
	tok, err := tokenizer.LearnBPE([]string{"(s (np (nnp danny)) (vp (vbd approached)))"}, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	fits := func(c *CLIPConfig) {
		c.Text.VocabSize = tok.VocabSize()
		c.Text.EOSTokenID = int(tok.EOS())
		c.Text.BOSTokenID = int(tok.BOS())
	}
	tests := []struct {
		name  string
		edit  func(c *CLIPConfig)
		error string
	}{
		{name: "fits", edit: fits},
		{name: "vocabulary too small", edit: func(c *CLIPConfig) { fits(c); c.Text.VocabSize = tok.VocabSize() - 1 }, error: "vocabulary only"},
		{name: "pools at another id", edit: func(c *CLIPConfig) { fits(c); c.Text.EOSTokenID = int(tok.EOS()) - 1 }, error: "pool at the wrong token"},
		{name: "legacy argmax pooling", edit: func(c *CLIPConfig) { fits(c); c.Text.EOSTokenID = 2 }},
		{name: "recorded fingerprint", edit: func(c *CLIPConfig) {
			fits(c)
			c.Extra = map[string]json.RawMessage{TokenizerKey: json.RawMessage(strconv.Quote(tok.Fingerprint()))}
		}},
		{name: "another tokenizer recorded", edit: func(c *CLIPConfig) {
			fits(c)
			c.Extra = map[string]json.RawMessage{TokenizerKey: json.RawMessage(`"sha256:00"`)}
		}, error: "changed since the model was saved"},
		{name: "fingerprint not a string", edit: func(c *CLIPConfig) {
			fits(c)
			c.Extra = map[string]json.RawMessage{TokenizerKey: json.RawMessage(`3`)}
		}, error: "want a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := NamedConfig("tiny")
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(cfg)
			err = CheckTokenizer(tok, cfg)
			if tc.error == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.error != "" && (err == nil || !strings.Contains(err.Error(), tc.error)) {
				t.Fatalf("got %v, want an error containing %q", err, tc.error)
			}
		})
	}
}
