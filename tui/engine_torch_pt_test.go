package tui

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/lavascope/lavascope/model/safetensors"
)

// writeStateDict writes the float32 tensors of a safetensors file as
// torch.save does for {"state_dict": {"module." + name: tensor}}: a zip of
// a protocol 2 pickle and one storage record per tensor.
func writeStateDict(t *testing.T, from, to string) {
	t.Helper()
	st, err := safetensors.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var p bytes.Buffer
	str := func(s string) {
		p.WriteByte('X')
		binary.Write(&p, binary.LittleEndian, uint32(len(s)))
		p.WriteString(s)
	}
	num := func(n int64) {
		p.WriteByte('J')
		binary.Write(&p, binary.LittleEndian, int32(n))
	}
	records := map[string][]byte{}
	p.WriteString("\x80\x02}")
	str("state_dict")
	p.WriteString("ccollections\nOrderedDict\n)R(")
	for i, ti := range st.Tensors() {
		if ti.DType != safetensors.F32 {
			t.Fatalf("%s is %s", ti.Name, ti.DType)
		}
		key := strconv.Itoa(i)
		if records["k1/data/"+key], err = st.Bytes(ti.Name); err != nil {
			t.Fatal(err)
		}
		str("module." + ti.Name)
		p.WriteString("ctorch._utils\n_rebuild_tensor_v2\n((")
		str("storage")
		p.WriteString("ctorch\nFloatStorage\n")
		str(key)
		str("cpu")
		num(ti.NumElements())
		p.WriteString("tQ")
		num(0)
		p.WriteByte('(')
		for _, d := range ti.Shape {
			num(d)
		}
		p.WriteString("t(")
		stride := int64(1)
		strides := make([]int64, len(ti.Shape))
		for d := len(ti.Shape) - 1; d >= 0; d-- {
			strides[d] = stride
			stride *= ti.Shape[d]
		}
		for _, s := range strides {
			num(s)
		}
		p.WriteString("t\x89ccollections\nOrderedDict\n)RtR")
	}
	p.WriteString("us.")
	records["k1/data.pkl"] = p.Bytes()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range records {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTorchEngineTorchSave: the explorer opens a torch.save state_dict with
// its --base and scores as it does the same weights in safetensors.
func TestTorchEngineTorchSave(t *testing.T) {
	f := newTorchFixture(t)
	pt := filepath.Join(t.TempDir(), "K1_best.pt")
	writeStateDict(t, filepath.Join(f.dir, "model.safetensors"), pt)
	// The base holds the config and tokenizer, not the weights: they can
	// only come from the .pt file.
	base := t.TempDir()
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "model.safetensors" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(f.dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := f.opts
	o.Checkpoint, o.Base = pt, base
	got := f.open(t, o)
	want := f.open(t, f.opts)
	if got.Info().Checkpoint != pt {
		t.Errorf("Info().Checkpoint = %q, want %q", got.Info().Checkpoint, pt)
	}
	ids := f.ids()[:4]
	gs, err := got.Score(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := want.Score(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	for k := range ws {
		for i := range ws[k].Logits {
			for j := range ws[k].Logits[i] {
				if d := math.Abs(gs[k].Logits[i][j] - ws[k].Logits[i][j]); !(d <= 1e-6) {
					t.Errorf("pair %s: logit[%d][%d] = %v from the .pt, %v from safetensors", ids[k], i, j, gs[k].Logits[i][j], ws[k].Logits[i][j])
				}
			}
		}
	}
	o.Base = ""
	if _, err := OpenTorch(context.Background(), o); err == nil {
		t.Error("a .pt with no config.json beside it and no base opened")
	}
}
