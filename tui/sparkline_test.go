package tui

import "testing"

func TestSparkline(t *testing.T) {
	tests := []struct {
		vs   []float64
		w    int
		want string
	}{
		{nil, 10, ""},
		{[]float64{1, 1, 1}, 10, "▁▁▁"},
		{[]float64{0, 7}, 10, "▁█"},
		{[]float64{7, 6, 5, 4, 3, 2, 1, 0}, 8, "█▇▆▅▄▃▂▁"},
		// Eight values in four cells: the means of each pair.
		{[]float64{8, 6, 8, 6, 1, 1, 0, 0}, 4, "██▂▁"},
	}
	for _, tc := range tests {
		if got := sparkline(tc.vs, tc.w); got != tc.want {
			t.Errorf("sparkline(%v, %d) = %q, want %q", tc.vs, tc.w, got, tc.want)
		}
	}
}

func TestWrapWords(t *testing.T) {
	text := "(s (np (nnp danny)) (vp (vbd left)))"
	lines := wrapWords(text, 12)
	var got []string
	for _, l := range lines {
		s := ""
		for k, w := range l {
			if k > 0 {
				s += " "
			}
			s += text[w[0]:w[1]]
		}
		got = append(got, s)
		if len(s) > 12 {
			t.Errorf("line %q is wider than 12", s)
		}
	}
	want := []string{"(s (np (nnp", "danny)) (vp", "(vbd left)))"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %q, want %q", i, got[i], want[i])
		}
	}
}
