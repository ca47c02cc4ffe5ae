package model

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
)

// TestProbeMatchesAlone: every structure's logits from the batched probe
// (three pairs a forward pass, every structure of every reading sharing
// it) equal, within 1e-4 relative, the logits of the structure scored alone
// against the pair's two images; and the readings' own trees get the
// logits Evaluate gives them. The batch changes only the order of float
// operations, so the tolerance covers BLAS and thread differences.
func TestProbeMatchesAlone(t *testing.T) {
	train, _, test := synthSplits(t, 70, 11)
	m, tok := smallCLIP(t, train, 7)
	w := torch.NewWorker()
	defer w.Close()
	o := EvalOptions{Style: trees.StylePaper, ChunkPairs: 3, Worker: w}
	res, err := Probe(context.Background(), m, tok, test, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Evaluate(context.Background(), m, tok, test, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Probes) != 2*test.Len() || res.Probes[0].Pair != ev.Scores[0].Pair {
		t.Fatalf("%d readings probed of %d pairs", len(res.Probes), test.Len())
	}
	prep, err := PreprocessFor(m)
	if err != nil {
		t.Fatal(err)
	}
	b := newBatcher(m, tok, test, o.Style, prep)
	near := func(got, want float64) bool { return math.Abs(got-want) <= 1e-4*max(1, math.Abs(want)) }
	for i, rp := range res.Probes {
		p, err := test.Pair(i / 2)
		if err != nil {
			t.Fatal(err)
		}
		if rp.Pair != p.ID || rp.Reading != i%2 {
			t.Fatalf("reading %d is %s/%d, want %s/%d", i, rp.Pair, rp.Reading, p.ID, i%2)
		}
		if !rp.Reachable || len(rp.Structures) < 2 {
			t.Errorf("%s/%d: reachable %v, %d structures", rp.Pair, rp.Reading, rp.Reachable, len(rp.Structures))
		}
		for _, s := range rp.Structures {
			in := newChunkInputs(b)
			in.Text(s.Text)
			for r := range p.Readings {
				if _, err := in.Image(&p, r); err != nil {
					t.Fatal(err)
				}
			}
			if err := in.Pack(); err != nil {
				t.Fatal(err)
			}
			alone, err := in.logits(w, m)
			if err != nil {
				t.Fatal(err)
			}
			for k := range s.Logits {
				if !near(s.Logits[k], float64(alone[k])) {
					t.Errorf("%s/%d %s: logit %d is %g batched, %g alone", rp.Pair, rp.Reading, s.Role, k, s.Logits[k], alone[k])
				}
			}
			if s.Role == RoleOriginal {
				for k, want := range ev.Scores[i].Logits {
					if !near(s.Logits[k], want) {
						t.Errorf("%s/%d: logit %d is %g probed, %g evaluated", rp.Pair, rp.Reading, k, s.Logits[k], want)
					}
				}
			}
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Probe(ctx, m, tok, test, nil, o); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	o.Style = trees.StyleWords
	if _, err := Probe(context.Background(), m, tok, test, nil, o); err == nil {
		t.Error("style words: no error")
	}
}

// TestProbeScore checks the ranks, margins and verdicts of scored
// structures on logits made up for the purpose.
func TestProbeScore(t *testing.T) {
	// Rows: 0 the original (reading 0), 1 an alternative, 2 reading 1's
	// tree. Columns: image 0, image 1.
	tests := []struct {
		name          string
		lpt           []float32
		ownRank       int
		otherRank     int
		discriminated bool
		order         []string
	}{
		{"each image its own tree", []float32{5, 1, 3, 2, 4, 6}, 1, 1, true, []string{RoleOriginal, RoleAlternative, RoleReading}},
		{"the alternative wins image 0", []float32{5, 1, 7, 2, 4, 6}, 2, 1, false, []string{RoleAlternative, RoleOriginal, RoleReading}},
		{"reading 1's tree second in image 1", []float32{5, 1, 3, 8, 4, 6}, 1, 2, false, []string{RoleOriginal, RoleReading, RoleAlternative}},
		{"a tie at the top is no win", []float32{5, 1, 5, 2, 4, 6}, 1, 1, false, []string{RoleOriginal, RoleAlternative, RoleReading}},
	}
	for _, tc := range tests {
		pr := &probeReading{
			rp: ReadingProbe{Reading: 0, Structures: []Structure{
				{Role: RoleOriginal, Reading: 0}, {Role: RoleAlternative, Reading: -1}, {Role: RoleReading, Reading: 1},
			}},
			rows: []int{0, 1, 2},
			cols: []int{0, 1},
			of:   []int{0, 2},
		}
		rp := pr.score(tc.lpt, 2)
		if rp.OwnRank != tc.ownRank || rp.OtherRank != tc.otherRank || rp.Discriminated != tc.discriminated {
			t.Errorf("%s: own rank %d, other rank %d, discriminated %v; want %d, %d, %v", tc.name,
				rp.OwnRank, rp.OtherRank, rp.Discriminated, tc.ownRank, tc.otherRank, tc.discriminated)
		}
		for i, s := range rp.Structures {
			if s.Role != tc.order[i] {
				t.Errorf("%s: structure %d is the %s, want the %s", tc.name, i, s.Role, tc.order[i])
			}
			if s.Margin != s.Logits[0]-s.Logits[1] {
				t.Errorf("%s: %s margin %g, logits %v", tc.name, s.Role, s.Margin, s.Logits)
			}
		}
	}
}
