package trees_test

import (
	"testing"

	"github.com/lavascope/lavascope/loader/synth"
	"github.com/lavascope/lavascope/trees"
)

// TestReattachmentsSynthFamilies: on every pair of the demo's test split
// (the generator's three families), each reading's alternatives hold the
// other reading's tree, as it is written.
func TestReattachmentsSynthFamilies(t *testing.T) {
	cfg := synth.Demo()
	reached, readings := map[string]int{}, map[string]int{}
	for i := range cfg.Pairs {
		if synth.SplitOf(i) != cfg.Split {
			continue
		}
		p := synth.Make(cfg.Seed, i, synth.DefaultSize)
		for r := range p.Readings {
			src, err := trees.Parse(p.Readings[r].Tree)
			if err != nil {
				t.Fatal(err)
			}
			other := p.Readings[1-r].Tree
			readings[p.Ambiguity]++
			for _, a := range trees.Reattachments(src) {
				if trees.Format(a.Tree) == other {
					reached[p.Ambiguity]++
					break
				}
			}
		}
	}
	if len(readings) != len(synth.Families) {
		t.Fatalf("families %v, want the generator's %v", readings, synth.Families)
	}
	for fam, n := range readings {
		t.Logf("%s: the other reading is an alternative for %d of %d readings", fam, reached[fam], n)
		if reached[fam] != n {
			t.Errorf("%s: the other reading is an alternative for %d of %d readings", fam, reached[fam], n)
		}
	}
}
