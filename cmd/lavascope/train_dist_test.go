package main

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// stepLosses reads the loss of every step from a run's log.jsonl.
func stepLosses(t *testing.T, dir string) map[int]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[int]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			Event string  `json:"event"`
			Step  int     `json:"step"`
			Loss  float64 `json:"loss"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Event == "train" {
			out[r.Step] = r.Loss
		}
	}
	return out
}

// buildLavascope builds this command into a temporary folder (skipping the
// test without a go tool) and returns its path.
func buildLavascope(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the binary")
	}
	bin := filepath.Join(t.TempDir(), "lavascope")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestTrainNprocPerNode: `train --nproc-per-node 2` (Gloo on the loopback)
// stopped at step 3 and resumed by one process logs the losses of one
// process throughout; bad settings exit 2 naming what is wrong.
func TestTrainNprocPerNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and trains; not with -short")
	}
	torchtest.RequireGloo(t)
	bin := buildLavascope(t)
	env := append(os.Environ(), "LAVASCOPE_TORCH_LIB="+torch.LibPath(), "XDG_CONFIG_HOME="+t.TempDir())
	run := func(extraEnv []string, args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(env, extraEnv...)
		out, err := cmd.CombinedOutput()
		if x, ok := err.(*exec.ExitError); ok {
			return string(out), x.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	dir := t.TempDir()
	recipe := []string{"train", "--data", "demo", "--init", "tiny", "--learn-vocab", "200", "--steps", "6", "--lr", "1e-3",
		"--warmup", "2", "--batch-pairs", "4", "--eval-every", "3", "--device", "cpu", "--progress", "none"}
	single := filepath.Join(dir, "single")
	if out, code := run(nil, append(recipe, "--out", single)...); code != 0 {
		t.Fatalf("one process: exit %d\n%s", code, out)
	}
	ranks := filepath.Join(dir, "ranks")
	out, code := run(nil, append(recipe, "--out", ranks, "--nproc-per-node", "2", "--stop-after", "3")...)
	if code != 0 || !strings.Contains(out, "rank 1 of 2 (gloo)") {
		t.Fatalf("2 ranks: exit %d\n%s", code, out)
	}
	if out, code := run(nil, "train", "--out", ranks, "--resume", "--progress", "none", "--device", "cpu"); code != 0 {
		t.Fatalf("resumed by one process: exit %d\n%s", code, out)
	}
	a, b := stepLosses(t, single), stepLosses(t, ranks)
	if len(a) != 6 || len(b) != 6 {
		t.Fatalf("steps logged: %d by one process, %d by 2 ranks then one", len(a), len(b))
	}
	for s, la := range a {
		if math.Abs(b[s]-la) > 1e-5*math.Abs(la) {
			t.Errorf("step %d: loss %.8g by one process, %.8g by 2 ranks then one", s, la, b[s])
		}
	}

	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"--nproc-per-node", "3"}, "does not split into 3 processes"},
		{nil, []string{"--nproc-per-node", "-1"}, "want at least 1"},
		{[]string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=x"}, nil, `MASTER_PORT="x"`},
		{[]string{"RANK=0", "WORLD_SIZE=3", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=1"}, nil, "does not split into 3 ranks"},
		{[]string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=1"}, []string{"--dist-backend", "mpi"}, `backend "mpi"`},
	} {
		args := append(append(recipe, "--out", filepath.Join(dir, "bad")), c.args...)
		out, code := run(c.env, args...)
		if code != 2 || !strings.Contains(out, c.want) {
			t.Errorf("%v %v: exit %d, want 2 and %q\n%s", c.env, c.args, code, c.want, out)
		}
	}
}
