package train_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
	"github.com/lavascope/lavascope/torch"
)

// smallData writes a synthetic manifest with 64-pixel images and a config
// of a CLIP small enough to train in seconds; it returns their paths.
func smallData(t *testing.T) (manifest, cfgPath string) {
	t.Helper()
	dir := t.TempDir()
	if _, stderr, code := cmdtest.RunCLI(t, "", "synth", "--out", dir, "--pairs", "60", "--seed", "3", "--size", "64"); code != 0 {
		t.Fatalf("synth: exit %d: %s", code, stderr)
	}
	cfg, err := model.NamedConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ProjectionDim = 16
	cfg.Vision.ImageSize, cfg.Vision.PatchSize = 64, 16
	cfg.Vision.HiddenSize, cfg.Vision.IntermediateSize, cfg.Vision.NumHiddenLayers, cfg.Vision.NumAttentionHeads = 32, 64, 1, 2
	cfg.Text.HiddenSize, cfg.Text.IntermediateSize, cfg.Text.NumHiddenLayers, cfg.Text.NumAttentionHeads = 32, 64, 1, 2
	cfgPath = filepath.Join(dir, "config.json")
	if err := cfg.WriteConfig(cfgPath); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "pairs.jsonl"), cfgPath
}

func TestTrainAndEvalCommands(t *testing.T) {
	dev := torchtest.Device(t)
	data, cfg := smallData(t)
	out := filepath.Join(t.TempDir(), "run")
	stdout, stderr, code := cmdtest.RunCLI(t, "", "train", "--data", data, "--init", cfg, "--learn-vocab", "200",
		"--batch-pairs", "2", "--steps", "6", "--eval-every", "3", "--lr", "1e-3", "--out", out, "--device", dev.String(), "--progress", "lines", "--tf32")
	if code != 0 {
		t.Fatalf("train: exit %d\n%s%s", code, stdout, stderr)
	}
	tf32Said := "tf32: no effect on " + dev.String()
	if dev.IsCUDA() {
		tf32Said = "with TF32 on"
	}
	if !strings.Contains(stderr, tf32Said) {
		t.Errorf("train --tf32 on %s does not say %q:\n%s", dev, tf32Said, stderr)
	}
	for _, want := range []string{"6 of 6 steps", "best val_accuracy", "last: " + filepath.Join(out, "last")} {
		if !strings.Contains(stdout, want) {
			t.Errorf("train output lacks %q:\n%s", want, stdout)
		}
	}
	for _, want := range []string{"step 3: val accuracy", "step 6: wrote last/"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("train progress lacks %q:\n%s", want, stderr)
		}
	}
	st, err := model.ReadTrainState(filepath.Join(out, "last"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Command, "--learn-vocab 200") || !strings.Contains(st.Command, "--device "+dev.String()) {
		t.Errorf("state records the command %q", st.Command)
	}

	for _, input := range []string{"tree", "text"} {
		stdout, stderr, code = cmdtest.RunCLI(t, "", "eval", "--checkpoint", filepath.Join(out, "best"), "--data", data,
			"--split", "test", "--input", input, "--json", "--device", dev.String())
		if code != 0 {
			t.Fatalf("eval %s: exit %d: %s", input, code, stderr)
		}
		var r struct {
			Accuracy *float64 `json:"accuracy"`
			Readings int      `json:"readings"`
			Ties     *int     `json:"ties"`
			Families []struct {
				Family string `json:"family"`
			} `json:"families"`
			ImageToText struct {
				Ties int `json:"ties"`
			} `json:"image_to_text"`
		}
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("eval --json: %v\n%s", err, stdout)
		}
		if r.Accuracy == nil || r.Ties == nil || r.Readings != 12 || len(r.Families) != 3 {
			t.Errorf("eval %s --json: %s", input, stdout)
		}
		if input == "text" && (*r.Accuracy != 50 || r.ImageToText.Ties != 12) {
			t.Errorf("text input: accuracy %v, image-to-text ties %d; want exactly 50 and 12", *r.Accuracy, r.ImageToText.Ties)
		}
	}
	stdout, _, code = cmdtest.RunCLI(t, "", "eval", "--checkpoint", filepath.Join(out, "best"), "--data", data, "--input", "text", "--device", dev.String())
	if code != 0 || !strings.Contains(stdout, "Text input") || !strings.Contains(stdout, "50.00") || !strings.Contains(stdout, "pp-attachment") {
		t.Errorf("eval table: exit %d\n%s", code, stdout)
	}
}

func TestTrainBadFlags(t *testing.T) {
	data, cfg := smallData(t)
	out := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--data", data, "--init", cfg, "--learn-vocab", "10"}, "--out"},
		{[]string{"train", "--data", data, "--out", out}, "exactly one of --from"},
		{[]string{"train", "--data", data, "--init", cfg, "--from", "x", "--out", out}, "exactly one of --from"},
		{[]string{"train", "--data", data, "--init", cfg, "--out", out}, "--tokenizer"},
		{[]string{"train", "--data", data, "--init", cfg, "--learn-vocab", "10", "--input", "image", "--out", out}, "--input"},
		{[]string{"train", "--data", data, "--init", cfg, "--learn-vocab", "10", "--steps", "5", "--epochs", "1", "--out", out}, "not both"},
		{[]string{"train", "--data", data, "--out", out, "--resume"}, "--resume"},
		// The option itself, not the explorer's cuda_graphs setting.
		{[]string{"train", "--data", data, "--init", cfg, "--learn-vocab", "10", "--out", filepath.Join(out, "graphs"), "--device", "cpu", "--cuda-graphs"}, "--cuda-graphs: CUDA graphs need a CUDA device"},
		{[]string{"eval", "--checkpoint", out, "--data", data, "--split", "dev"}, "--split"},
		{[]string{"eval", "--checkpoint", out, "--data", data, "--input", "pixels"}, "--input"},
	} {
		_, stderr, code := cmdtest.RunCLI(t, "", tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestTrainSIGINT runs the built binary and interrupts it with SIGINT once
// best/ exists: it must exit 0, leave a loadable and resumable last/, and
// not touch best/. The process is stopped (SIGSTOP) while best/ is read and
// the signal sent, at a moment when no checkpoint write is under way, so
// the comparison does not race with a regular evaluation.
func TestTrainSIGINT(t *testing.T) {
	dev := torchtest.Device(t)
	if runtime.GOOS != "linux" {
		t.Skip("reads the process state from /proc")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the binary")
	}
	bin := filepath.Join(t.TempDir(), "lavascope")
	if out, err := exec.Command(goTool, "build", "-o", bin, "../../../cmd/lavascope").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data, cfg := smallData(t)
	out := filepath.Join(t.TempDir(), "run")
	env := append(os.Environ(), "LAVASCOPE_TORCH_LIB="+torch.LibPath(), "XDG_CONFIG_HOME="+t.TempDir())
	cmd := exec.Command(bin, "train", "--data", data, "--init", cfg, "--learn-vocab", "200", "--batch-pairs", "2",
		"--steps", "100000", "--eval-every", "5", "--lr", "1e-3", "--out", out, "--device", dev.String(), "--progress", "lines")
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	p := cmd.Process
	defer p.Kill()
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			select {
			case err := <-done:
				t.Fatalf("train exited while waiting for %s: %v\n%s", what, err, stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s after 90 s\n%s", what, stderr.String())
			}
		}
	}
	wait("best/", func() bool { return exists(filepath.Join(out, "best", "trainer_state.json")) })
	var snapshot map[string][]byte
	wait("a pause outside checkpoint writes", func() bool {
		if err := p.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		wait("the stop", func() bool { return procState(p.Pid) == 'T' })
		if writing(out) {
			p.Signal(syscall.SIGCONT)
			return false
		}
		snapshot = readDir(t, filepath.Join(out, "best"))
		return true
	})
	if err := p.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGINT: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("still running 60 s after SIGINT\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted after step") || !strings.Contains(stderr.String(), "--resume") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	after := readDir(t, filepath.Join(out, "best"))
	if len(after) != len(snapshot) {
		t.Errorf("best/ had %d files, now %d", len(snapshot), len(after))
	}
	for name, data := range snapshot {
		if !bytes.Equal(after[name], data) {
			t.Errorf("best/%s changed after SIGINT", name)
		}
	}
	st, err := model.ReadTrainState(filepath.Join(out, "last"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Complete || st.Step < 5 {
		t.Errorf("last/ at step %d, complete %v", st.Step, st.Complete)
	}
	m, err := model.Load(filepath.Join(out, "last"), model.Options{})
	if err != nil {
		t.Fatalf("last/ does not load: %v", err)
	}
	m.Close()

	// The run continues from last/ (its data remembered by the run).
	res := exec.Command(bin, "train", "--out", out, "--resume", "--stop-after", strconv.Itoa(st.Step+2), "--device", dev.String(), "--progress", "none")
	res.Env = env
	if b, err := res.CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, b)
	}
	again, err := model.ReadTrainState(filepath.Join(out, "last"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Step != st.Step+2 {
		t.Errorf("resumed to step %d, want %d", again.Step, st.Step+2)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// procState is the state letter of a process in /proc (T: stopped).
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name in parentheses may hold spaces; the state follows it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// writing reports whether a checkpoint is being written in the run folder.
func writing(out string) bool {
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			return true
		}
	}
	return false
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if out[e.Name()], err = os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestTrainRecipe: --recipe authors sets its flags, a flag given beside it
// (--lr before it, --clip-grad after it) wins, the run records both, --resume continues with
// them and refuses a flag that contradicts them; a resume from a last/
// without optimizer state exits 2; the help lists every setting.
func TestTrainRecipe(t *testing.T) {
	dev := torchtest.Device(t)
	data, cfg := smallData(t)
	out := filepath.Join(t.TempDir(), "run")
	_, stderr, code := cmdtest.RunCLI(t, "", "train", "--data", data, "--init", cfg, "--learn-vocab", "200", "--batch-pairs", "2",
		"--lr", "1e-3", "--recipe", "authors", "--clip-grad", "0.5", "--steps", "4", "--stop-after", "2", "--eval-every", "2", "--out", out,
		"--device", dev.String(), "--progress", "none")
	if code != 0 {
		t.Fatalf("train --recipe authors: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "recipe authors") {
		t.Errorf("train does not say its recipe:\n%s", stderr)
	}
	st, err := model.ReadTrainState(filepath.Join(out, "last"))
	if err != nil {
		t.Fatal(err)
	}
	a := st.Args
	want := model.TrainArgs{Recipe: "authors", Input: a.Input, Style: a.Style, BatchPairs: 2, Steps: 4, LR: 1e-3,
		Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0, Warmup: 0, Schedule: "linear", ClipGrad: 0.5,
		NoLogitScaleClamp: true, Freeze: "vision-model", Seed: a.Seed, EvalEvery: 2}
	if a != want {
		t.Errorf("recorded settings\n%+v\nwant\n%+v", a, want)
	}
	_, stderr, code = cmdtest.RunCLI(t, "", "train", "--out", out, "--resume", "--schedule", "cosine", "--device", dev.String())
	if code != 2 || !strings.Contains(stderr, "--schedule cosine (the run has linear)") {
		t.Errorf("resume with another schedule: exit %d: %s", code, stderr)
	}
	if err := os.Remove(filepath.Join(out, "last", "optimizer.safetensors")); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = cmdtest.RunCLI(t, "", "train", "--out", out, "--resume", "--recipe", "authors", "--device", dev.String(), "--progress", "none")
	if code != 2 || !strings.Contains(stderr, "no optimizer state") {
		t.Errorf("resume without optimizer state: exit %d: %s", code, stderr)
	}

	help, _, code := cmdtest.RunCLI(t, "", "train", "--recipe", "authors", "--help")
	if code != 0 {
		t.Fatalf("train --help: exit %d", code)
	}
	r, err := model.FindRecipe("authors")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Settings {
		if line := "--" + s.Flag + " " + s.Value + " "; !strings.Contains(help, line) {
			t.Errorf("train --help does not list %q", line)
		}
	}
	for _, bad := range [][]string{{"--recipe", "openai"}, {"--freeze", "vision-tower"}, {"--schedule", "step"},
		{"--logit-scale-clamp", "no"}, {"--save-optimizer", "never"}, {"--freeze", "text", "--freeze-vision"},
		{"--overlap", "yes"}, {"--bucket-mb", "0"}, {"--bucket-mb", "NaN"}} {
		args := append([]string{"train", "--data", data, "--init", cfg, "--learn-vocab", "10", "--out", t.TempDir()}, bad...)
		if _, stderr, code := cmdtest.RunCLI(t, "", args...); code != 2 || !strings.Contains(stderr, bad[0]) {
			t.Errorf("%v: exit %d: %s", bad, code, stderr)
		}
	}
}

// TestTrainPrecision: bf16-mixed trains where libtorch has bf16 autocast
// for the device and says so, or exits 2 naming what is missing; a bad
// value, a bf16-mixed that contradicts --tf32, exit 2.
func TestTrainPrecision(t *testing.T) {
	dev := torchtest.Device(t)
	data, cfg := smallData(t)
	args := func(extra ...string) []string {
		return append([]string{"train", "--data", data, "--init", cfg, "--learn-vocab", "200", "--batch-pairs", "2",
			"--steps", "2", "--lr", "1e-3", "--out", filepath.Join(t.TempDir(), "run"), "--device", dev.String(), "--progress", "none"}, extra...)
	}
	stdout, stderr, code := cmdtest.RunCLI(t, "", args("--precision", "bf16-mixed")...)
	if err := model.PrecisionBF16Mixed.Usable(dev, torch.Float32); err != nil {
		if code != 2 || !strings.Contains(stderr, "bf16 autocast") {
			t.Errorf("bf16-mixed where it is not usable (%v): exit %d\n%s", err, code, stderr)
		}
	} else if code != 0 || !strings.Contains(stderr, "in bf16-mixed") || !strings.Contains(stdout, "2 of 2 steps") {
		t.Errorf("train --precision bf16-mixed: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, bad := range [][]string{{"--precision", "fp16"}, {"--precision", "bf16-mixed", "--tf32"}} {
		if _, stderr, code := cmdtest.RunCLI(t, "", args(bad...)...); code != 2 || !strings.Contains(stderr, "--precision") {
			t.Errorf("train %v: exit %d, want 2 with a message about --precision:\n%s", bad, code, stderr)
		}
	}
}
