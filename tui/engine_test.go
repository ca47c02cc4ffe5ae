package tui_test

import (
	"math"
	"reflect"
	"testing"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/tui"
)

func TestNewScore(t *testing.T) {
	tests := []struct {
		name    string
		logits  [][]float64
		picks   []int
		correct []bool
		margins []float64
	}{
		{"both right", [][]float64{{3, 1}, {1, 2}}, []int{0, 1}, []bool{true, true}, []float64{2, 1}},
		{"B picks A", [][]float64{{3, 2.5}, {1, 2}}, []int{0, 0}, []bool{true, false}, []float64{2, -0.5}},
		// Text input gives both readings the same text, so each column ties
		// or prefers one image for both: a tie is not correct.
		{"tie", [][]float64{{2, 2}, {2, 2}}, []int{-1, -1}, []bool{false, false}, []float64{0, 0}},
		{"three readings", [][]float64{{3, 0, 0}, {1, 2, 0}, {0, 3, 1}}, []int{0, 2, 2}, []bool{true, false, true}, []float64{2, -1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tui.NewScore("p", tc.logits)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Picks, tc.picks) || !reflect.DeepEqual(s.Correct, tc.correct) || !reflect.DeepEqual(s.Margins, tc.margins) {
				t.Errorf("picks %v correct %v margins %v, want %v %v %v", s.Picks, s.Correct, s.Margins, tc.picks, tc.correct, tc.margins)
			}
			for j := range tc.logits {
				sum := 0.0
				for i := range tc.logits {
					sum += s.Probs[i][j]
				}
				if math.Abs(sum-1) > 1e-12 {
					t.Errorf("probabilities of text %d sum to %v", j, sum)
				}
			}
			wantMin := math.Inf(1)
			for _, m := range tc.margins {
				wantMin = min(wantMin, m)
			}
			if s.Margin() != wantMin {
				t.Errorf("Margin() = %v, want %v", s.Margin(), wantMin)
			}
			failed := false
			for _, c := range tc.correct {
				failed = failed || !c
			}
			if s.Failed() != failed {
				t.Errorf("Failed() = %v, want %v", s.Failed(), failed)
			}
		})
	}
}

func TestNewScoreRejectsBadShapes(t *testing.T) {
	for _, logits := range [][][]float64{nil, {{1}}, {{1, 2}, {3}}} {
		if _, err := tui.NewScore("p", logits); err == nil {
			t.Errorf("NewScore(%v) gave no error", logits)
		}
	}
}

func TestTargetCells(t *testing.T) {
	tests := []struct {
		t    tui.Target
		j, n int
		want [][2]int
	}{
		{tui.TargetOwn, 1, 2, [][2]int{{1, 1}}},
		{tui.TargetTwin, 0, 2, [][2]int{{1, 0}}},
		{tui.TargetTwin, 1, 2, [][2]int{{0, 1}}},
		{tui.TargetAll, 1, 2, [][2]int{{0, 1}, {1, 1}}},
	}
	for _, tc := range tests {
		if got := tc.t.Cells(tc.j, tc.n); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v.Cells(%d, %d) = %v, want %v", tc.t, tc.j, tc.n, got, tc.want)
		}
		back, err := tui.ParseTarget(tc.t.String())
		if err != nil || back != tc.t {
			t.Errorf("ParseTarget(%q) = %v, %v", tc.t.String(), back, err)
		}
	}
	if _, err := tui.ParseTarget("mine"); err == nil {
		t.Error("ParseTarget accepted mine")
	}
}

func TestParseMethod(t *testing.T) {
	for _, m := range explain.Methods {
		if got, err := explain.ParseMethod(string(m)); err != nil || got != m {
			t.Errorf("ParseMethod(%q) = %v, %v", m, got, err)
		}
	}
	if _, err := explain.ParseMethod("lime"); err == nil {
		t.Error("ParseMethod accepted lime")
	}
}

func TestFineTuneOptionsValidate(t *testing.T) {
	good := tui.FineTuneOptions{Steps: 10, LR: 1e-5, BatchPairs: 2, Input: "tree"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*tui.FineTuneOptions){
		func(o *tui.FineTuneOptions) { o.Steps = 0 },
		func(o *tui.FineTuneOptions) { o.LR = 0 },
		func(o *tui.FineTuneOptions) { o.LR = math.NaN() },
		func(o *tui.FineTuneOptions) { o.LR = math.Inf(1) },
		func(o *tui.FineTuneOptions) { o.BatchPairs = -1 },
		func(o *tui.FineTuneOptions) { o.Input = "pixels" },
	} {
		o := good
		bad(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%+v passed Validate", o)
		}
	}
}
