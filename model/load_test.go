package model

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/model/safetensors"
	"github.com/lavascope/lavascope/torch"
)

// copyCheckpoint copies the fixture's checkpoint into a temporary folder,
// passing each tensor through edit (which may rename, drop, reshape or
// re-encode it; returning false drops it).
func copyCheckpoint(tb testing.TB, edit func(t *safetensors.Tensor) bool) string {
	tb.Helper()
	src := filepath.Join(hfTinyDir, "checkpoint")
	dir := tb.TempDir()
	cfg, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		tb.Fatal(err)
	}
	st, err := safetensors.Open(filepath.Join(src, singleFile))
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	var ts []safetensors.Tensor
	for _, ti := range st.Tensors() {
		data, err := st.Bytes(ti.Name)
		if err != nil {
			tb.Fatal(err)
		}
		t := safetensors.Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: data}
		if edit == nil || edit(&t) {
			ts = append(ts, t)
		}
	}
	if err := safetensors.Save(filepath.Join(dir, singleFile), ts, map[string]string{"format": "pt"}); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// recode converts a tensor's F32 data to dt.
func recode(tb testing.TB, t *safetensors.Tensor, dt safetensors.DType) {
	tb.Helper()
	v, err := safetensors.DecodeFloat32s(t.DType, t.Data)
	if err != nil {
		tb.Fatal(err)
	}
	if t.Data, err = safetensors.EncodeFloat32s(dt, v); err != nil {
		tb.Fatal(err)
	}
	t.DType = dt
}

func TestLoadBadCheckpoints(t *testing.T) {
	dev := torchtest.Device(t)
	const victim = "text_model.encoder.layers.1.mlp.fc1.weight"
	for _, tc := range []struct {
		name string
		dir  func(t *testing.T) string
		want []string // each must appear in the error
	}{
		{"non-finite weight", func(t *testing.T) string {
			return copyCheckpoint(t, func(x *safetensors.Tensor) bool {
				if x.Name == victim {
					v, _ := safetensors.DecodeFloat32s(x.DType, x.Data)
					v[17] = float32(math.NaN())
					x.Data, _ = safetensors.EncodeFloat32s(x.DType, v)
				}
				return true
			})
		}, []string{singleFile, victim, "NaN or infinite"}},
		{"infinite bf16 weight", func(t *testing.T) string {
			return copyCheckpoint(t, func(x *safetensors.Tensor) bool {
				if x.Name == "vision_model.post_layernorm.bias" {
					v, _ := safetensors.DecodeFloat32s(x.DType, x.Data)
					v[0] = float32(math.Inf(-1))
					x.Data, _ = safetensors.EncodeFloat32s(safetensors.BF16, v)
					x.DType = safetensors.BF16
				}
				return true
			})
		}, []string{singleFile, "vision_model.post_layernorm.bias", "NaN or infinite"}},
		// The classes below are found by OpenCheckpoint; Load must pass
		// them on with the file named.
		{"missing key", func(t *testing.T) string {
			return copyCheckpoint(t, func(x *safetensors.Tensor) bool { return x.Name != victim })
		}, []string{singleFile, "missing: " + victim}},
		{"unexpected key", func(t *testing.T) string {
			return copyCheckpoint(t, func(x *safetensors.Tensor) bool {
				if x.Name == victim {
					x.Name = "text_model.encoder.layers.1.mlp.fc3.weight"
				}
				return true
			})
		}, []string{singleFile, "unexpected: text_model.encoder.layers.1.mlp.fc3.weight"}},
		{"shape mismatch", func(t *testing.T) string {
			return copyCheckpoint(t, func(x *safetensors.Tensor) bool {
				if x.Name == victim {
					x.Shape = []int64{64, 128}
				}
				return true
			})
		}, []string{singleFile, victim, "expected [128 64], found [64 128]"}},
		{"integer weight", func(t *testing.T) string {
			return copyCheckpoint(t, func(x *safetensors.Tensor) bool {
				if x.Name == victim {
					x.DType = safetensors.I32
				}
				return true
			})
		}, []string{singleFile, victim, "I32"}},
		{"truncated", func(t *testing.T) string {
			dir := copyCheckpoint(t, nil)
			p := filepath.Join(dir, singleFile)
			st, _ := os.Stat(p)
			if err := os.Truncate(p, st.Size()-100); err != nil {
				t.Fatal(err)
			}
			return dir
		}, []string{singleFile}},
		{"pickle only", func(t *testing.T) string {
			dir := copyCheckpoint(t, nil)
			os.Remove(filepath.Join(dir, singleFile))
			os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), []byte("PK\x03\x04"), 0o644)
			return dir
		}, []string{"pytorch_model.bin", "not a readable zip archive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := torch.LiveTensors()
			m, err := Load(tc.dir(t), Options{Device: dev})
			if err == nil {
				m.Close()
				t.Fatal("loaded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if end := torch.LiveTensors(); end != start {
				t.Errorf("a failed load leaked %d tensors", end-start)
			}
		})
	}
}

func TestLoadBadOptions(t *testing.T) {
	torchtest.Require(t)
	dir := filepath.Join(hfTinyDir, "checkpoint")
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"integer dtype", Options{DType: torch.Int64}, "not a floating-point type"},
		{"absent gpu", Options{Device: torch.CUDA(torch.CUDADeviceCount() + 3)}, "allocating 78 parameters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Load(dir, tc.o)
			if err == nil {
				m.Close()
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q: want %q and the folder", err, tc.want)
			}
		})
	}
}

// TestLoadStoredDTypes: weights stored as F16, BF16 or F64 load as exactly
// the values stored, converted to the compute dtype.
func TestLoadStoredDTypes(t *testing.T) {
	dev := torchtest.Device(t)
	ref := readHostTensors(t, filepath.Join(hfTinyDir, "checkpoint", singleFile))
	for _, dt := range []safetensors.DType{safetensors.F16, safetensors.BF16, safetensors.F64} {
		t.Run(dt.String(), func(t *testing.T) {
			dir := copyCheckpoint(t, func(x *safetensors.Tensor) bool { recode(t, x, dt); return true })
			m, err := Load(dir, Options{Device: dev})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for _, p := range m.Params() {
				got, err := p.Tensor.Float32s()
				if err != nil {
					t.Fatal(err)
				}
				enc, _ := safetensors.EncodeFloat32s(dt, ref[p.Name].f32)
				want, _ := safetensors.DecodeFloat32s(dt, enc)
				if !slices.Equal(got, want) {
					t.Fatalf("%s differs from the stored %s values", p.Name, dt)
				}
			}
		})
	}
}

// TestComputeDTypes runs the fixture in reduced precision: bf16 (and f16
// where the device has the kernels) must stay near the fp32 reference.
func TestComputeDTypes(t *testing.T) {
	dev := torchtest.Device(t)
	want := readHostTensors(t, filepath.Join(hfTinyDir, "expected.safetensors"))
	dts := []torch.DType{torch.BFloat16}
	if dev.IsCUDA() {
		dts = append(dts, torch.Float16)
	}
	for _, dt := range dts {
		t.Run(dt.String(), func(t *testing.T) {
			m := loadHFTiny(t, Options{Device: dev, DType: dt})
			for _, o := range []ForwardOptions{{}, {Capture: true}} {
				s := torch.NewScope()
				pixels, ids, _ := hfTinyInputs(t, s)
				out, err := m.Forward(s, pixels, ids, o)
				if err != nil {
					s.Close()
					t.Fatal(err)
				}
				if got := out.Image.Embeds.DType(); got != dt {
					t.Errorf("embeddings are %s, want %s", got, dt)
				}
				for _, name := range []string{"image_embeds", "text_embeds"} {
					d := maxAbsDiff(t, name, outputByName(out)[name], want[name])
					t.Logf("%s %+v %s: max |Δ| %.3g", dt, o, name, d)
					if d > 0.05 {
						t.Errorf("%s: max |Δ| %.3g from fp32 HF", name, d)
					}
				}
				s.Close()
			}
		})
	}
}
