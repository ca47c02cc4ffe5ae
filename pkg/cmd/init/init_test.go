package initcmd_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/model/safetensors"
	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

var hfTiny = filepath.Join("..", "..", "..", "testdata", "hf-clip-tiny")

func TestInitCommand(t *testing.T) {
	dev := torchtest.Device(t)
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	for _, args := range [][]string{
		{"--config", "tiny", "--out", a, "--seed", "5"},
		{"--config", "tiny", "--out", b, "--seed", "5"},
		{"--config", filepath.Join(hfTiny, "checkpoint", "config.json"), "--out", c, "--dtype", "bf16"},
	} {
		stdout, stderr, code := cmdtest.RunCLI(t, "", append([]string{"init"}, args...)...)
		if code != 0 || !strings.Contains(stdout, "parameters") {
			t.Fatalf("init %v: exit %d, %s%s", args, code, stdout, stderr)
		}
	}
	wa, _ := os.ReadFile(filepath.Join(a, "model.safetensors"))
	wb, _ := os.ReadFile(filepath.Join(b, "model.safetensors"))
	if len(wa) == 0 || !bytes.Equal(wa, wb) {
		t.Error("the same seed wrote different weights")
	}
	// The initialised checkpoint runs: dump it on inputs of its shape.
	inputs := filepath.Join(dir, "in.safetensors")
	ids := make([]byte, 0, 77*8)
	for i := range 77 {
		// Ids every config here takes: the fixture's vocabulary has 1000.
		id := int64(499)
		if i == 0 {
			id = 498
		} else if i < 5 {
			id = int64(320 + i)
		}
		for k := range 8 {
			ids = append(ids, byte(id>>(8*k)))
		}
	}
	if err := safetensors.Save(inputs, []safetensors.Tensor{
		safetensors.F32Tensor("pixel_values", []int64{1, 3, 224, 224}, make([]float32, 3*224*224)),
		{Name: "input_ids", DType: safetensors.I64, Shape: []int64{1, 77}, Data: ids},
	}, nil); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.safetensors")
	if err := safetensors.Save(bad, []safetensors.Tensor{
		safetensors.F32Tensor("pixel_values", []int64{1, 3, 64, 64}, make([]float32, 3*64*64)),
		{Name: "input_ids", DType: safetensors.I64, Shape: []int64{1, 77}, Data: ids},
	}, nil); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := cmdtest.RunCLI(t, "", "dump", "--checkpoint", a, "--inputs", bad, "--out", filepath.Join(dir, "x"), "--device", dev.String())
	if code != 2 || !strings.Contains(stderr, "bad.safetensors: pixels") {
		t.Errorf("64-pixel images: exit %d, %q", code, stderr)
	}
	for _, ck := range []string{a, c} {
		got := filepath.Join(dir, "dump.safetensors")
		_, stderr, code := cmdtest.RunCLI(t, "", "dump", "--checkpoint", ck, "--inputs", inputs, "--out", got, "--device", dev.String())
		if code != 0 {
			t.Fatalf("dump of %s: exit %d: %s", ck, code, stderr)
		}
		v := cmdtest.ReadF32s(t, got)
		if n := len(v["text_last_hidden"]); n != 77*64 {
			t.Errorf("%s: text_last_hidden has %d values", ck, n)
		}
		if slices.ContainsFunc(v["logits_per_image"], func(x float32) bool { return math.IsNaN(float64(x)) }) {
			t.Errorf("%s: NaN logits", ck)
		}
	}
	_, stderr, code = cmdtest.RunCLI(t, "", "init", "--config", "vit-h-14", "--out", filepath.Join(dir, "d"))
	if code != 2 || !strings.Contains(stderr, "vit-h-14") {
		t.Errorf("unknown config: exit %d, %q", code, stderr)
	}
}

// TestInitRefusesHugeConfig gives init a config whose every key is within
// its bound but whose parameters take 211 TB: it allocated tensor by tensor
// for 71 s before the allocator failed; now it exits 2 with the figure
// before loading libtorch.
// TestInitDemoTokenizer: --tokenizer demo names the embedded model's
// tokenizer, as `tokenize --tokenizer demo` does, and the checkpoint
// written tokenizes as the demo does.
func TestInitDemoTokenizer(t *testing.T) {
	dev := torchtest.Device(t)
	out := filepath.Join(t.TempDir(), "ck")
	stdout, stderr, code := cmdtest.RunCLI(t, "", "init", "--config", "tiny", "--out", out, "--tokenizer", "demo", "--device", dev.String())
	if code != 0 {
		t.Fatalf("init --tokenizer demo: exit %d, %s%s", code, stdout, stderr)
	}
	for _, f := range []string{"vocab.json", "merges.txt"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("the checkpoint lacks the demo's %s: %v", f, err)
		}
	}
	const text = "(s (np (nnp danny)))"
	want, _, code := cmdtest.RunCLI(t, "", "tokenize", "--tokenizer", "demo", "--json", text)
	got, stderr, code2 := cmdtest.RunCLI(t, "", "tokenize", "--tokenizer", out, "--json", text)
	if code != 0 || code2 != 0 || got != want {
		t.Errorf("tokenize with the new checkpoint (exit %d):\n%s%s\nwith demo (exit %d):\n%s", code2, got, stderr, code, want)
	}
}

func TestInitRefusesHugeConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	big := `{"text_config": {"hidden_size": 65536, "intermediate_size": 65536, "num_hidden_layers": 1024, "num_attention_heads": 1},
		"vision_config": {"hidden_size": 65536, "intermediate_size": 65536, "num_hidden_layers": 1024, "num_attention_heads": 1}}`
	if err := os.WriteFile(cfg, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	start := time.Now()
	_, stderr, code := cmdtest.RunCLI(t, "", "init", "--config", cfg, "--out", out, "--torch-lib", filepath.Join(dir, "no-shim.so"))
	if code != 2 || !strings.Contains(stderr, "211.1 TB in float32") || !strings.Contains(stderr, cfg) {
		t.Errorf("init of a 211 TB config: exit %d, want 2 naming the file and the size:\n%s", code, stderr)
	}
	// A generous bound: the refusal reads one small file.
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("init took %v to refuse", d)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("init wrote its output")
	}
}
