package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/loader/synth"
	"github.com/lavascope/lavascope/torch"
)

// shardTolerance bounds how far a number written by 2 ranks may be from
// one process's: a rank's share starts a batch of its own, and matrix
// products of other shapes may round otherwise (the measured differences
// are near 1e-6; docs/distributed.md).
const shardTolerance = 1e-4

// sameNumbers compares two decoded JSON values: numbers within
// shardTolerance (relative, above 1), everything else equal. It returns
// where they differ and the largest difference of a number.
func sameNumbers(a, b any, path string, worst *float64) error {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return fmt.Errorf("%s: %v and %v", path, a, b)
		}
		for k := range x {
			if err := sameNumbers(x[k], y[k], path+"."+k, worst); err != nil {
				return err
			}
		}
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return fmt.Errorf("%s: %d and %v", path, len(x), b)
		}
		for i := range x {
			if err := sameNumbers(x[i], y[i], fmt.Sprintf("%s[%d]", path, i), worst); err != nil {
				return err
			}
		}
	case float64:
		y, ok := b.(float64)
		if !ok {
			return fmt.Errorf("%s: %v and %v", path, a, b)
		}
		d := math.Abs(x - y)
		*worst = max(*worst, d)
		if d > shardTolerance*max(1, math.Abs(x)) {
			return fmt.Errorf("%s: %v and %v", path, x, y)
		}
	default:
		if !reflect.DeepEqual(a, b) {
			return fmt.Errorf("%s: %v and %v", path, a, b)
		}
	}
	return nil
}

// sameCSV compares two CSV files cell by cell, numbers within the
// tolerance.
func sameCSV(t *testing.T, a, b string, worst *float64) {
	t.Helper()
	ra, rb := readCSV(t, a), readCSV(t, b)
	if len(ra) != len(rb) {
		t.Fatalf("%s: %d rows by 2 ranks, %d by one process", filepath.Base(a), len(rb), len(ra))
	}
	for i := range ra {
		for j := range ra[i] {
			x, errx := strconv.ParseFloat(ra[i][j], 64)
			y, erry := strconv.ParseFloat(rb[i][j], 64)
			if errx == nil && erry == nil {
				*worst = max(*worst, math.Abs(x-y))
				if math.Abs(x-y) <= shardTolerance*max(1, math.Abs(x)) {
					continue
				}
			}
			if j >= len(rb[i]) || ra[i][j] != rb[i][j] {
				t.Errorf("%s row %d: %q by one process, %q by 2 ranks", filepath.Base(a), i, ra[i], rb[i])
				break
			}
		}
	}
}

// TestShardedCommands: eval, probe and explain --split with
// --nproc-per-node 2 (Gloo on the loopback) write what one process writes,
// and a rank that fails stops the other with its status.
func TestShardedCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts ranks; not with -short")
	}
	torchtest.RequireGloo(t)
	bin := buildLavascope(t)
	env := append(os.Environ(), "LAVASCOPE_TORCH_LIB="+torch.LibPath(), "XDG_CONFIG_HOME="+t.TempDir())
	run := func(args ...string) (stdout, stderr string, code int, took time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append(args, "--device", "cpu")...)
		cmd.Env = env
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		start := time.Now()
		err := cmd.Run()
		took = time.Since(start)
		if x, ok := err.(*exec.ExitError); ok {
			code = x.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code, took
	}
	both := func(args ...string) (one, two string) {
		t.Helper()
		one, e1, c1, d1 := run(args...)
		two, e2, c2, d2 := run(append(args, "--nproc-per-node", "2")...)
		if c1 != 0 || c2 != 0 {
			t.Fatalf("%v: exit %d alone, %d with 2 ranks\n%s\n%s", args, c1, c2, e1, e2)
		}
		t.Logf("%s: %.1fs alone, %.1fs with 2 ranks", args[0], d1.Seconds(), d2.Seconds())
		return one, two
	}
	sameJSON := func(what, a, b string) {
		t.Helper()
		var x, y any
		if err := json.Unmarshal([]byte(a), &x); err != nil {
			t.Fatalf("%s alone: %v\n%s", what, err, a)
		}
		if err := json.Unmarshal([]byte(b), &y); err != nil {
			t.Fatalf("%s with 2 ranks: %v\n%s", what, err, b)
		}
		worst := 0.0
		if err := sameNumbers(x, y, what, &worst); err != nil {
			t.Errorf("2 ranks differ from one process: %v", err)
		}
		t.Logf("%s: largest difference %.3g", what, worst)
	}

	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"probe", "--nproc-per-node", "-1"}, "want at least 1"},
		{[]string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=x"}, []string{"eval"}, `MASTER_PORT="x"`},
		{[]string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=1"}, []string{"explain", "--out", t.TempDir(), "--dist-backend", "mpi"}, `backend "mpi"`},
	} {
		cmd := exec.Command(bin, append(c.args, "--checkpoint", "demo", "--data", "demo", "--device", "cpu")...)
		cmd.Env = append(env, c.env...)
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("%v %v: exit %d, want 2 and %q\n%s", c.env, c.args, code, c.want, out)
		}
	}

	// The demo's test split: 101 pairs, an odd number, so the shares differ.
	one, two := both("eval", "--checkpoint", "demo", "--data", "demo", "--json", "--scores", "--chunk-pairs", "8")
	sameJSON("eval", one, two)
	var acc1, acc2 struct{ Accuracy, AccuracyFirstIndex float64 }
	json.Unmarshal([]byte(one), &acc1)
	json.Unmarshal([]byte(two), &acc2)
	if acc1 != acc2 {
		t.Errorf("eval: accuracy %+v with 2 ranks, %+v alone", acc2, acc1)
	}
	one, two = both("eval", "--checkpoint", "demo", "--data", "demo")
	if one != two {
		t.Errorf("eval's table with 2 ranks:\n%s\nalone:\n%s", two, one)
	}
	one, two = both("probe", "--checkpoint", "demo", "--data", "demo", "--split", "test", "--json", "--scores")
	sameJSON("probe", one, two)

	dir := t.TempDir()
	out1, out2 := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	explain := []string{"explain", "--checkpoint", "demo", "--data", "demo", "--split", "test", "--limit", "3", "--batch-pairs", "2"}
	s1, e1, c1, d1 := run(append(explain, "--out", out1)...)
	s2, e2, c2, d2 := run(append(explain, "--out", out2, "--nproc-per-node", "2")...)
	if c1 != 0 || c2 != 0 {
		t.Fatalf("explain: exit %d alone, %d with 2 ranks\n%s\n%s", c1, c2, e1, e2)
	}
	t.Logf("explain: %.1fs alone, %.1fs with 2 ranks", d1.Seconds(), d2.Seconds())
	names := func(d string) []string {
		es, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, e := range es {
			n = append(n, e.Name())
		}
		return n
	}
	if a, b := names(out1), names(out2); !slices.Equal(a, b) || len(a) != 3*2*2+2 {
		t.Fatalf("explain wrote %v alone, %v with 2 ranks", a, b)
	}
	worst := 0.0
	for _, f := range []string{"readings.csv", "summary.csv"} {
		sameCSV(t, filepath.Join(out1, f), filepath.Join(out2, f), &worst)
	}
	t.Logf("explain CSV: largest difference %.3g", worst)
	for _, n := range names(out1) {
		if filepath.Ext(n) != ".json" {
			continue
		}
		a, _ := os.ReadFile(filepath.Join(out1, n))
		b, _ := os.ReadFile(filepath.Join(out2, n))
		sameJSON("explain "+n, string(a), string(b))
	}
	// Rank 0 prints its own readings' lines, then the summary of all.
	summary := func(s, out string) string { return strings.ReplaceAll(s[strings.LastIndex(s, "\n\n"):], out, "OUT") }
	if a, b := summary(s1, out1), summary(s2, out2); a != b {
		t.Errorf("explain's summary with 2 ranks:\n%s\nalone:\n%s", b, a)
	}

	// A rank whose share holds an image that does not decode fails with
	// exit 2; the launcher stops the other rank, waiting at the gather.
	bad := t.TempDir()
	if _, err := synth.Write(bad, synth.Config{Pairs: 12, Seed: 1, Size: 64}); err != nil {
		t.Fatal(err)
	}
	ims, _ := filepath.Glob(filepath.Join(bad, "images", "*-00011-a.png"))
	if len(ims) != 1 {
		t.Fatalf("no image to break: %v", ims)
	}
	// A whole header, as loading checks it, and a cut body, which only
	// decoding finds.
	b, err := os.ReadFile(ims[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ims[0], b[:100], 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code, took := run("eval", "--checkpoint", "demo", "--data", filepath.Join(bad, synth.ManifestName), "--split", "train", "--nproc-per-node", "2")
	t.Logf("a rank failing: exit %d after %.1fs", code, took.Seconds())
	if code != 2 || !strings.Contains(stderr, "rank 1 exited with status 2") || !strings.Contains(stderr, filepath.Base(ims[0])) {
		t.Errorf("a rank failing: exit %d after %s\n%s", code, took, stderr)
	}
}
