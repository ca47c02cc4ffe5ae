package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
	"github.com/lavascope/lavascope/pkg/cmd/explore"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/torch"
)

// TestExploreProbeEndToEnd drives the probing keys of the pair view in
// tmux at 100×30 on the demo model: R ranks reading A's structures, E
// edits reading A's tree into reading B's, which then scores as reading B
// against both images, and on q --save-edits writes the edited pair as a
// new manifest line that the loader reads.
func TestExploreProbeEndToEnd(t *testing.T) {
	dir, bin, lib := torchE2E(t)
	saved := filepath.Join(dir, "edits.jsonl")
	tm := newTmux(t, dir)
	status := filepath.Join(dir, "status")
	script := fmt.Sprintf(`%s explore --data demo --graphics blocks --export-dir %s --save-edits %s; echo "rc=$?" > %s; sleep 600`,
		bin, filepath.Join(dir, "export"), saved, status)
	tm.run("new-session", "-d", "-s", "e2e", "-x", "100", "-y", "30", "-c", dir,
		"-e", "XDG_CONFIG_HOME="+dir, "-e", "XDG_DATA_HOME="+dir, "-e", "XDG_CACHE_HOME="+filepath.Join(dir, "cache"), "-e", torch.EnvLib+"="+lib, "sh", "-c", script)
	screen := tm.waitFor("the pair list with scores", func(s string) bool { return strings.Contains(s, "explained") })
	id := cursorRow(screen)
	cfg := explore.DemoData
	pairs, err := synth.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var pair *loader.Pair
	for i := range pairs {
		if pairs[i].ID == id {
			pair = &pairs[i]
		}
	}
	if pair == nil {
		t.Fatalf("the list's first pair %q is not a demo pair", id)
	}
	tm.keys("Enter")
	tm.waitFor("the pair view", func(s string) bool { return strings.Contains(s, "picks image") })
	tm.keys("R")
	tm.waitFor("the ranking of reading A", func(s string) bool {
		return strings.Contains(s, "★ reading A (gold)") && strings.Contains(s, "◆ reading B")
	})
	tm.keys("Escape")
	// A key sent right after escape would read as alt+key.
	tm.waitFor("the pair view again", func(s string) bool { return !strings.Contains(s, "★") && strings.Contains(s, "picks image") })
	tm.keys("E")
	tm.waitFor("the editor", func(s string) bool { return strings.Contains(s, "edit reading A") })
	tm.keys("C-u")
	tm.run("send-keys", "-t", "e2e", "-l", pair.Readings[1].Tree)
	tm.waitFor("the typed tree parsed", func(s string) bool { return strings.Contains(s, "parses") })
	tm.keys("Enter")
	screen = tm.waitFor("the edited pair scored and explained", func(s string) bool {
		return strings.Contains(s, "edited A") && strings.Contains(s, "was→now") && strings.Contains(s, "constituents")
	})
	rows := 0
	for _, l := range strings.Split(ansi.Strip(screen), "\n") {
		_, table, ok := strings.Cut(l, "  image ")
		if f := strings.Fields(table); ok && len(f) == 5 {
			rows++
			_, nowA, _ := strings.Cut(f[1], "→")
			wasB, _, _ := strings.Cut(f[3], "→")
			if nowA != wasB || f[4] != "+0.00" {
				t.Errorf("reading A edited into B does not score as B: %q", l)
			}
		}
	}
	if rows != 2 {
		t.Errorf("%d rows of logits in the edited header:\n%s", rows, screen)
	}
	tm.keys("q")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(status); len(b) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b, _ := os.ReadFile(status); strings.TrimSpace(string(b)) != "rc=0" {
		t.Fatalf("after q: %q\n%s", b, tm.capture())
	}
	ds, err := loader.Load(saved, loader.Options{})
	if err != nil {
		t.Fatalf("the saved edits do not load: %v", err)
	}
	if len(ds.Pairs) != 1 || ds.Pairs[0].ID != id+"-edit1" || ds.Pairs[0].Readings[0].Tree != pair.Readings[1].Tree {
		t.Errorf("saved %+v", ds.Pairs)
	}
}

// TestSaveEditsRefusesInput: --save-edits never names the manifest being
// explored, by its path or through a link; the refusal is a usage error,
// before any terminal is needed.
func TestSaveEditsRefusesInput(t *testing.T) {
	pairs, err := synth.Generate(explore.DemoData)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := loader.WriteDataset(dir, "pairs.jsonl", pairs[:2]); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "pairs.jsonl")
	link := filepath.Join(dir, "link.jsonl")
	if err := os.Symlink(in, link); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{in, link, filepath.Join(dir, ".", "pairs.jsonl")} {
		_, stderr, code := runCLI(t, "", "explore", "--engine", "fake", "--split", "all", "--data", in, "--save-edits", out)
		if code != factory.ExitUsage || !strings.Contains(stderr, "never written over") {
			t.Errorf("--save-edits %s: exit %d, stderr %q", out, code, stderr)
		}
	}
	if after, _ := os.ReadFile(in); string(after) != string(before) {
		t.Error("the manifest changed")
	}
}
