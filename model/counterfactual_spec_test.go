package model

import (
	"slices"
	"testing"
)

func TestParseAblation(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Ablation
	}{
		{"neutral", Ablation{Neutral: true}},
		{"tokens:3,4", Ablation{Tokens: []int{3, 4}}},
		{"tokens: 2", Ablation{Tokens: []int{2}}},
		{"constituent:PP", Ablation{Constituent: "PP"}},
	} {
		got, err := ParseAblation(c.in)
		if err != nil || got.Neutral != c.want.Neutral || got.Constituent != c.want.Constituent || !slices.Equal(got.Tokens, c.want.Tokens) {
			t.Errorf("ParseAblation(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "tokens:", "tokens:0", "tokens:1,x", "neutral:1", "constituent:", "constituent:(PP", "constituent:\x1b[2J", "words"} {
		if _, err := ParseAblation(in); err == nil {
			t.Errorf("ParseAblation(%q): no error", in)
		}
	}
}

func TestParseMaskSpec(t *testing.T) {
	if s, err := ParseMaskSpec("evidence"); err != nil || !s.Evidence {
		t.Errorf("evidence: %+v, %v", s, err)
	}
	if s, err := ParseMaskSpec("2"); err != nil || s.Index != 2 || s.String() != "2" {
		t.Errorf("2: %+v, %v", s, err)
	}
	for _, in := range []string{"", "0", "-1", "object", "1.5"} {
		if _, err := ParseMaskSpec(in); err == nil {
			t.Errorf("ParseMaskSpec(%q): no error", in)
		}
	}
}

// FuzzParseAblation: any input parses or fails with a message, and a
// parsed ablation is one of the three kinds with positions ≥ 1.
func FuzzParseAblation(f *testing.F) {
	for _, s := range []string{"neutral", "tokens:3,4", "constituent:PP", "tokens:-1", "constituent:\x1b[2J"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAblation(s)
		if err != nil {
			if err.Error() == "" {
				t.Error("empty error")
			}
			return
		}
		kinds := 0
		for _, on := range []bool{a.Neutral, len(a.Tokens) > 0, a.Constituent != ""} {
			if on {
				kinds++
			}
		}
		if kinds != 1 {
			t.Errorf("%q parses to %+v", s, a)
		}
		if slices.ContainsFunc(a.Tokens, func(p int) bool { return p < 1 }) {
			t.Errorf("%q: positions %v", s, a.Tokens)
		}
	})
}
