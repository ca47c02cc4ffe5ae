package probe_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

// probeJSON is the part of probe's JSON the tests read.
type probeJSON struct {
	Pair     string  `json:"pair"`
	Pairs    int     `json:"pairs"`
	Readings int     `json:"readings"`
	Score    float64 `json:"score"`
	Probes   []struct {
		Pair       string `json:"pair"`
		Reading    int    `json:"reading"`
		Reachable  bool   `json:"reachable"`
		Structures []struct {
			Role    string    `json:"role"`
			Reading int       `json:"reading"`
			Tree    string    `json:"tree"`
			Text    string    `json:"text"`
			Logits  []float64 `json:"logits"`
			Margin  float64   `json:"margin"`
			Ranks   []int     `json:"ranks"`
			Move    *struct {
				Kind  string `json:"kind"`
				Moved struct {
					Label      string `json:"label"`
					Start, End int
				} `json:"moved"`
				From struct{ Label string } `json:"from"`
				To   struct{ Label string } `json:"to"`
			} `json:"move"`
		} `json:"structures"`
	} `json:"probes"`
	Families []struct {
		Family        string  `json:"family"`
		Readings      int     `json:"readings"`
		Reachable     int     `json:"reachable"`
		Discriminated int     `json:"discriminated"`
		Score         float64 `json:"score"`
	} `json:"families"`
}

// TestProbeDemoPair is the check: for a PP-attachment pair of the
// demo, reading A's alternatives include reading B's tree, and probe ranks
// the structures with their logits against both images.
func TestProbeDemoPair(t *testing.T) {
	dev := torchtest.Device(t)
	test, err := demo.Split(loader.SplitTest)
	if err != nil {
		t.Fatal(err)
	}
	p, err := test.Pair(0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Ambiguity != "pp-attachment" {
		t.Fatalf("demo test pair 0 is %s, %s", p.ID, p.Ambiguity)
	}
	stdout, stderr, code := cmdtest.RunCLI(t, "", "probe", "--checkpoint", "demo", "--data", "demo", "--pair", p.ID, "--json", "--device", dev.String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r probeJSON
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if r.Pair != p.ID || r.Pairs != 1 || r.Readings != 2 || len(r.Probes) != 2 {
		t.Fatalf("pair %q, %d pairs, %d readings, %d probes; want %s, 1, 2, 2", r.Pair, r.Pairs, r.Readings, len(r.Probes), p.ID)
	}
	a := r.Probes[0]
	if a.Reading != 0 || !a.Reachable {
		t.Errorf("reading A: reading %d, reachable %v", a.Reading, a.Reachable)
	}
	found := false
	for i, s := range a.Structures {
		if len(s.Logits) != 2 || len(s.Ranks) != 2 || s.Text == "" {
			t.Errorf("structure %d: %d logits, %d ranks, text %q", i, len(s.Logits), len(s.Ranks), s.Text)
		}
		if i > 0 && s.Margin > a.Structures[i-1].Margin {
			t.Errorf("structure %d has margin %g above its predecessor's %g", i, s.Margin, a.Structures[i-1].Margin)
		}
		if s.Margin != s.Logits[0]-s.Logits[1] {
			t.Errorf("structure %d: margin %g, logits %v", i, s.Margin, s.Logits)
		}
		switch s.Role {
		case "original":
			if s.Tree != p.Readings[0].Tree || s.Move != nil {
				t.Errorf("the original is %s (move %v), reading A is %s", s.Tree, s.Move, p.Readings[0].Tree)
			}
		case "reading":
			found = true
			if s.Reading != 1 || s.Tree != p.Readings[1].Tree {
				t.Errorf("reading %d's tree %s, reading B is %s", s.Reading, s.Tree, p.Readings[1].Tree)
			}
			if s.Move == nil || s.Move.Kind != "pp" || s.Move.Moved.Label != "PP" || s.Move.From.Label != "VP" || s.Move.To.Label != "NP" {
				t.Errorf("reading B's move: %+v; want the PP from VP to NP", s.Move)
			}
		}
	}
	if !found {
		t.Errorf("reading B's tree is not among reading A's structures:\n%s", stdout)
	}

	stdout, stderr, code = cmdtest.RunCLI(t, "", "probe", "--checkpoint", "demo", "--data", "demo", "--pair", p.ID, "--reading", "B", "--device", dev.String())
	if code != 0 {
		t.Fatalf("--reading B: exit %d: %s", code, stderr)
	}
	for _, want := range []string{p.ID, "Reading B", "image A", "image B", "reading B (its own tree)", `reading A: PP "with`, "NP → VP"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--reading B: no %q in\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "Reading A") {
		t.Errorf("--reading B lists reading A:\n%s", stdout)
	}
}

// TestProbeDemoSplit: the whole test split in one command, with the score
// per family, every reading reaching the other reading's tree.
func TestProbeDemoSplit(t *testing.T) {
	dev := torchtest.Device(t)
	stdout, stderr, code := cmdtest.RunCLI(t, "", "probe", "--checkpoint", "demo", "--data", "demo", "--split", "test", "--json", "--device", dev.String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r probeJSON
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if r.Pairs != 101 || r.Readings != 202 || len(r.Probes) != 0 || len(r.Families) != 3 || r.Score < 0 || r.Score > 100 {
		t.Fatalf("%d pairs, %d readings, %d listed, %d families, score %g; want 101, 202, none without --scores, 3, a percentage",
			r.Pairs, r.Readings, len(r.Probes), len(r.Families), r.Score)
	}
	for _, f := range r.Families {
		t.Logf("%s: %d of %d readings discriminated (%.2f%%)", f.Family, f.Discriminated, f.Readings, f.Score)
		if f.Reachable != f.Readings || f.Score < 0 || f.Score > 100 || f.Readings == 0 {
			t.Errorf("%s: %+v", f.Family, f)
		}
	}
}

// TestProbeBadInput: what probe refuses exits 2 with a message naming it,
// before any model is loaded.
func TestProbeBadInput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "synth")
	if _, stderr, code := cmdtest.RunCLI(t, "", "synth", "--out", dir, "--pairs", "10", "--seed", "2"); code != 0 {
		t.Fatalf("synth: exit %d: %s", code, stderr)
	}
	manifest := filepath.Join(dir, "pairs.jsonl")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", "demo", "--pair", "pp-12345"}, `demo has no pair "pp-12345"`},
		{[]string{"--data", "demo", "--pair", "nope"}, `demo has no pair "nope"`},
		{[]string{"--data", manifest, "--pair", "nope"}, `has no pair "nope"`},
		{[]string{"--data", "demo", "--pair", "pp-00009", "--reading", "c"}, `--reading "c": pair pp-00009 has readings a, b`},
		{[]string{"--data", "demo", "--pair", "pp-00009", "--reading", "\x1b[2J"}, `--reading "\x1b[2J"`},
		{[]string{"--data", "demo", "--reading", "a"}, "--reading needs --pair"},
		{[]string{"--data", "demo", "--style", "words"}, "--style words"},
		{[]string{"--data", "demo", "--style", "bold"}, "--style"},
		{[]string{"--data", "demo", "--split", "dev"}, `demo has no split "dev"`},
		{[]string{"--data", "demo", "--chunk-pairs", "0"}, "--chunk-pairs"},
	} {
		args := append([]string{"probe", "--checkpoint", "demo"}, tc.args...)
		_, stderr, code := cmdtest.RunCLI(t, "", args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
		if strings.Contains(stderr, "\x1b") {
			t.Errorf("%q: stderr holds an escape: %q", tc.args, stderr)
		}
	}
}

// TestProbeManifest: a pair of a manifest on disk is found by its id, in
// whichever split it is.
func TestProbeManifest(t *testing.T) {
	dev := torchtest.Device(t)
	dir := filepath.Join(t.TempDir(), "synth")
	if _, stderr, code := cmdtest.RunCLI(t, "", "synth", "--out", dir, "--pairs", "10", "--seed", "2"); code != 0 {
		t.Fatalf("synth: exit %d: %s", code, stderr)
	}
	for _, id := range []string{"adj-00004", "pp-00009"} {
		stdout, stderr, code := cmdtest.RunCLI(t, "", "probe", "--checkpoint", "demo", "--data", filepath.Join(dir, "pairs.jsonl"), "--pair", id, "--json", "--device", dev.String())
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", id, code, stderr)
		}
		var r probeJSON
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatal(err)
		}
		if r.Pair != id || len(r.Probes) != 2 || !r.Probes[0].Reachable || !r.Probes[1].Reachable {
			t.Errorf("%s: %s", id, stdout)
		}
	}
}
