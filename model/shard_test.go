package model

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/trees"
)

// TestShardedEvalProbe: Evaluate and Probe over 2 ranks (Gloo on the
// loopback) give every rank the result of one process.
func TestShardedEvalProbe(t *testing.T) {
	if torchtest.IsRank() {
		t.Skip("a rank does not start ranks")
	}
	torchtest.RequireGloo(t)
	out := torchtest.RunRanks(t, 2, "TestShardChild", 3*time.Minute)
	t.Log(out[0])
}

// shardTolerance bounds the difference of a logit between one process and
// a rank: a share starts a chunk of its own, and the matrix products of
// other shapes may round otherwise.
const shardTolerance = 1e-4

func closeLogits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > shardTolerance*max(1, math.Abs(a[i])) {
			return false
		}
	}
	return true
}

// TestShardChild is one rank of TestShardedEvalProbe: it runs each call as
// one process and sharded, and compares.
func TestShardChild(t *testing.T) {
	g := torchtest.JoinRanks(t)
	ctx := context.Background()
	train, _, test := synthSplits(t, 100, 13)
	m, tok := smallCLIP(t, train, 7)
	// The chunk size leaves the shares' chunks unlike one process's.
	for _, input := range []string{InputText, InputTree} {
		st, _ := InputStyle(input, trees.StylePaper)
		o := EvalOptions{Style: st, ChunkPairs: 3, Retrieval: true}
		one, err := Evaluate(ctx, m, tok, test, o)
		if err != nil {
			t.Fatal(err)
		}
		o.Group = g
		two, err := Evaluate(ctx, m, tok, test, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(two.Scores) != len(one.Scores) {
			t.Fatalf("%s input: %d readings sharded, %d alone", input, len(two.Scores), len(one.Scores))
		}
		worst := 0.0
		for i, a := range one.Scores {
			b := two.Scores[i]
			if a.Pair != b.Pair || a.Reading != b.Reading || !closeLogits(a.Logits, b.Logits) || !closeLogits(a.ImageLogits, b.ImageLogits) {
				t.Fatalf("%s input, reading %d: %+v sharded, %+v alone", input, i, b, a)
			}
			for k := range a.Logits {
				worst = max(worst, math.Abs(a.Logits[k]-b.Logits[k]), math.Abs(a.ImageLogits[k]-b.ImageLogits[k]))
			}
		}
		t.Logf("%s input: largest logit difference %.3g", input, worst)
		// No margin of this model on this split is within the tolerance of
		// a tie, so the decisions must agree exactly.
		if two.Tally != one.Tally || two.ImageToText != one.ImageToText || len(two.Families) != len(one.Families) {
			t.Errorf("%s input: tally %+v sharded, %+v alone", input, two.Tally, one.Tally)
		}
		if *two.Retrieval != *one.Retrieval || two.Truncated != one.Truncated {
			t.Errorf("%s input: retrieval %+v sharded, %+v alone", input, *two.Retrieval, *one.Retrieval)
		}
	}

	o := EvalOptions{Style: trees.StylePaper, ChunkPairs: 3}
	one, err := Probe(ctx, m, tok, test, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Group = g
	two, err := Probe(ctx, m, tok, test, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if two.ProbeTally != one.ProbeTally || len(two.Probes) != len(one.Probes) {
		t.Fatalf("probe: %+v sharded, %+v alone", two.ProbeTally, one.ProbeTally)
	}
	for i, a := range one.Probes {
		b := two.Probes[i]
		if a.Pair != b.Pair || a.Reading != b.Reading || len(a.Structures) != len(b.Structures) {
			t.Fatalf("probe %d: %s/%d sharded, %s/%d alone", i, b.Pair, b.Reading, a.Pair, a.Reading)
		}
		for s := range a.Structures {
			if a.Structures[s].Tree != b.Structures[s].Tree || !closeLogits(a.Structures[s].Logits, b.Structures[s].Logits) {
				t.Errorf("probe %d, structure %d: %+v sharded, %+v alone", i, s, b.Structures[s], a.Structures[s])
			}
			if (a.Structures[s].Move == nil) != (b.Structures[s].Move == nil) || a.Structures[s].Move != nil && a.Structures[s].Move.Kind != b.Structures[s].Move.Kind {
				t.Errorf("probe %d, structure %d: move %v sharded, %v alone", i, s, b.Structures[s].Move, a.Structures[s].Move)
			}
		}
	}

	// Ranks that read other trees are told so, all of them.
	if g.Rank() == 1 {
		o.Style = trees.StylePTB
	}
	if _, err := Probe(ctx, m, tok, test, nil, o); err == nil || !strings.Contains(err.Error(), "other pairs or settings") {
		t.Errorf("rank %d with another style: %v", g.Rank(), err)
	}
}

func TestOutcomeText(t *testing.T) {
	for _, o := range []Outcome{Wrong, Tie, Correct} {
		b, _ := o.MarshalText()
		var back Outcome
		if err := back.UnmarshalText(b); err != nil || back != o {
			t.Errorf("%v: back %v, %v", o, back, err)
		}
	}
	var o Outcome
	if err := o.UnmarshalText([]byte("right")); err == nil {
		t.Error(`"right": no error`)
	}
}
