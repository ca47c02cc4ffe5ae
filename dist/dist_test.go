package dist

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLineWriter(t *testing.T) {
	var b strings.Builder
	w := &lineWriter{w: &b, prefix: "rank 1: "}
	w.Write([]byte("a\nb"))
	w.Write([]byte("c\n\x1b"))
	w.Flush()
	if got, want := b.String(), "rank 1: a\nrank 1: bc\nrank 1: \x1b\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestLaunchStopsTheOthers: when one rank fails, Launch stops the rest and
// names the failed one; every rank sees torchrun's variables.
func TestLaunchStopsTheOthers(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	var out, errs strings.Builder
	// Rank 2 fails only once rank 0 has printed its line, so that the
	// line is there to check whichever rank the scheduler runs first.
	ready := filepath.Join(t.TempDir(), "ready")
	script := `echo "$RANK/$WORLD_SIZE $LOCAL_RANK $MASTER_ADDR"
if [ "$RANK" = 0 ]; then : > "$1"; fi
if [ "$RANK" = 2 ]; then while [ ! -e "$1" ]; do sleep 0.01; done; exit 3; fi
exec sleep 60`
	start := time.Now()
	err = Launch(context.Background(), LaunchOptions{
		N: 3, Exe: sh, Stdout: &out, Stderr: &errs,
		Args: []string{"-c", script, "sh", ready},
	})
	re, ok := errors.AsType[*RankError](err)
	if !ok || re.Rank != 2 || re.Code != 3 {
		t.Fatalf("got %v, want rank 2 exiting with 3", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the other ranks were stopped after %v", d)
	}
	if !strings.Contains(out.String(), "0/3 0 127.0.0.1") || !strings.Contains(errs.String(), "rank 2: 2/3 2 127.0.0.1") {
		t.Errorf("outputs: %q and %q", out.String(), errs.String())
	}
}

func TestLaunchRefusesNoRanks(t *testing.T) {
	if err := Launch(context.Background(), LaunchOptions{N: 0, Exe: "sh"}); err == nil {
		t.Error("no error for 0 ranks")
	}
}

// TestLaunchNamesTheSignal: a rank that a signal ends is reported with
// the signal, which the command turns into 128 + its number.
func TestLaunchNamesTheSignal(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	var out strings.Builder
	err = Launch(context.Background(), LaunchOptions{
		N: 1, Exe: sh, Stdout: &out, Stderr: &out,
		Args: []string{"-c", `kill -INT $$; sleep 60`},
	})
	re, ok := errors.AsType[*RankError](err)
	if !ok || re.Code != -1 || re.Signal != syscall.SIGINT || !strings.Contains(err.Error(), "rank 0 was killed by interrupt") {
		t.Fatalf("got %v (%+v), want rank 0 killed by SIGINT", err, re)
	}
}
