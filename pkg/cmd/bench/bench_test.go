package bench_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/bench"
	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/torch"
)

// runBenchCmd runs `lavascope bench ARGS` and returns stdout and stderr.
func runBenchCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	root := cmdtest.Root()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"bench"}, args...))
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func TestBenchJSONAndCompare(t *testing.T) {
	dev := torchtest.Device(t)
	out, stderr, err := runBenchCmd(t, "all", "--config", "tiny", "--device", dev.String(), "--pairs", "2",
		"--batch-pairs", "1", "--warmup", "0", "--repeat", "1", "--json")
	if err != nil {
		t.Fatalf("bench all: %v\n%s", err, stderr)
	}
	recs, err := bench.ReadRecords(strings.NewReader(out), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	var works []string
	for _, r := range recs {
		works = append(works, r.Work)
		if r.Impl != "lavascope" || r.Config != "tiny" || r.Device != dev.String() || !strings.Contains(r.Versions, "libtorch") {
			t.Errorf("record %+v", r)
		}
	}
	if got := strings.Join(works, " "); got != "explain-last explain-all explain-batch score train-2" {
		t.Errorf("rows %q", got)
	}
	file := filepath.Join(t.TempDir(), "lv.jsonl")
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	table, _, err := runBenchCmd(t, "compare", file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"config tiny on " + dev.String(), "hf-default", "lavascope", "relevance, 2 pairs batched, all layers", "training, 2 items (1 pair) per step"} {
		if !strings.Contains(table, want) {
			t.Errorf("comparison lacks %q:\n%s", want, table)
		}
	}
	plain, _, err := runBenchCmd(t, "score", "--config", "tiny", "--device", dev.String(), "--warmup", "0", "--repeat", "2")
	if err != nil || !strings.Contains(plain, "scoring one pair (forward only)") || !strings.Contains(plain, "median") {
		t.Errorf("plain table: %v\n%s", err, plain)
	}
}

func TestBenchTF32(t *testing.T) {
	dev := torchtest.Device(t)
	out, stderr, err := runBenchCmd(t, "score", "--config", "tiny", "--device", dev.String(), "--tf32",
		"--warmup", "0", "--repeat", "1", "--json")
	if err != nil {
		t.Fatalf("bench score --tf32: %v\n%s", err, stderr)
	}
	recs, err := bench.ReadRecords(strings.NewReader(out), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || !strings.HasSuffix(recs[0].Options, ", TF32") || !strings.HasPrefix(recs[0].VsF32, "f32 with TF32 vs f32") {
		t.Errorf("records %+v: want the options to say TF32 and its accuracy against f32", recs)
	}
}

func TestBenchProfile(t *testing.T) {
	dev := torchtest.Device(t)
	if !torch.ProfilerCompiled() {
		t.Skip("the shim has no profiler: its headers did not compile against this libtorch")
	}
	plain, stderr, err := runBenchCmd(t, "score", "--config", "tiny", "--device", dev.String(), "--warmup", "0", "--repeat", "1", "--profile", "1")
	if err != nil {
		t.Fatalf("bench score --profile 1: %v\n%s", err, stderr)
	}
	table, profile, ok := strings.Cut(plain, "\nprofile of score")
	if !ok || !strings.Contains(table, "scoring one pair") || !strings.Contains(profile, "1 run under libtorch's profiler") || !strings.Contains(profile, "aten::") {
		t.Errorf("want the table, then the profile of its row:\n%s", plain)
	}
	out, _, err := runBenchCmd(t, "score", "--config", "tiny", "--device", dev.String(), "--warmup", "0", "--repeat", "1", "--profile", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := bench.ReadRecords(strings.NewReader(out), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Profile == nil || len(recs[0].Profile.Top) == 0 {
		t.Errorf("records %+v: want a profile in the record", recs)
	}
}

func TestBenchBadInput(t *testing.T) {
	torchtest.Require(t)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"score", "--dtype", "f64"},
		{"explain", "--pairs", "0"},
		{"train", "--batch-pairs", "0"},
		{"score", "--repeat", "0"},
		{"score", "--profile", "-1"},
		{"score", "--profile-trace", "traces"},
		{"score", "--profile", "1", "--profile-trace", filepath.Join(bad, "sub")},
		{"train", "--adamw", "sgd"},
		{"score", "--precision", "fp16"},
		{"score", "--precision", "bf16-mixed", "--dtype", "bf16"},
		{"score", "--precision", "bf16-mixed", "--tf32"},
		{"score", "--device", "cpu", "--cuda-graphs"},
		{"compare", bad},
	} {
		_, _, err := runBenchCmd(t, args...)
		var ee *factory.ExitError
		if !errors.As(err, &ee) || ee.Code != 2 {
			t.Errorf("bench %v: %v, want exit status 2", args, err)
		}
	}
	// The option itself is read, not the explorer's cuda_graphs setting of
	// the same name, whose values are auto and off.
	if _, _, err := runBenchCmd(t, "score", "--device", "cpu", "--cuda-graphs"); err == nil || !strings.HasPrefix(err.Error(), "--cuda-graphs: ") {
		t.Errorf("bench --cuda-graphs on the CPU: %v, want the option's own error", err)
	}
}

// TestBenchDeviceMessages: asking for CUDA where there is none gives one
// clear message, auto falls back to the CPU with a notice.
func TestBenchDeviceMessages(t *testing.T) {
	torchtest.Require(t)
	if torch.CUDAAvailable() {
		t.Skip("libtorch sees a GPU: the CUDA-missing messages cannot be seen here")
	}
	_, _, err := runBenchCmd(t, "score", "--config", "tiny", "--device", "cuda", "--repeat", "1", "--warmup", "0")
	var de *model.DeviceError
	if !errors.As(err, &de) {
		t.Fatalf("bench --device cuda without CUDA: %v, want a device error", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "--device cpu") {
		t.Errorf("message %q: want one line that says what to do", msg)
	}
	out, stderr, err := runBenchCmd(t, "score", "--config", "tiny", "--device", "auto", "--repeat", "1", "--warmup", "0", "--json")
	if err != nil {
		t.Fatalf("bench --device auto: %v", err)
	}
	if !strings.Contains(stderr, "device auto:") || !strings.Contains(stderr, "running on the CPU") {
		t.Errorf("no fallback notice on stderr: %q", stderr)
	}
	if !strings.Contains(out, `"device":"cpu"`) {
		t.Errorf("auto did not run on the CPU: %s", out)
	}
}

// TestBenchFlagsPerSubcommand: each subcommand's help lists the flags of
// the rows it times and no others.
func TestBenchFlagsPerSubcommand(t *testing.T) {
	for sub, want := range map[string][2][]string{
		"score":   {{"--config", "--repeat", "--precision"}, {"--pairs", "--batch-pairs", "--clip-grad", "--adamw"}},
		"explain": {{"--pairs"}, {"--batch-pairs", "--clip-grad", "--adamw"}},
		"train":   {{"--batch-pairs", "--clip-grad", "--adamw", "--precision"}, {"--pairs"}},
		"all":     {{"--pairs", "--batch-pairs", "--clip-grad", "--adamw"}, nil},
	} {
		out, _, err := runBenchCmd(t, sub, "--help")
		if err != nil {
			t.Fatalf("bench %s --help: %v", sub, err)
		}
		for _, f := range want[0] {
			if !strings.Contains(out, f+" ") {
				t.Errorf("bench %s --help lacks %s", sub, f)
			}
		}
		for _, f := range want[1] {
			if strings.Contains(out, f+" ") {
				t.Errorf("bench %s --help lists %s, a flag of other rows", sub, f)
			}
		}
	}
}

// TestBenchMixed times scoring and a training step in bf16-mixed where
// libtorch has bf16 autocast for the device; the records say so.
func TestBenchMixed(t *testing.T) {
	dev := torchtest.Device(t)
	if err := model.PrecisionBF16Mixed.Usable(dev, torch.Float32); err != nil {
		t.Skipf("no bf16 autocast here: %v", err)
	}
	out, stderr, err := runBenchCmd(t, "all", "--config", "tiny", "--device", dev.String(), "--precision", "bf16-mixed",
		"--pairs", "1", "--batch-pairs", "1", "--warmup", "0", "--repeat", "1", "--json")
	if err != nil {
		t.Fatalf("bench all --precision bf16-mixed: %v\n%s", err, stderr)
	}
	recs, err := bench.ReadRecords(strings.NewReader(out), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Impl != "lavascope+bf16-mixed" || !strings.HasSuffix(r.Options, ", bf16-mixed") || !strings.HasPrefix(r.VsF32, "bf16-mixed vs f32") {
			t.Errorf("%s: impl %q, options %q, vs f32 %q; want bf16-mixed stated with its accuracy", r.Work, r.Impl, r.Options, r.VsF32)
		}
	}
}
