package model

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/trees"
)

// Ablation is a change of the readings' texts by name, as
// `lavascope probe --ablate` takes it: "tokens:3,4" drops those positions
// of the token ids (0 is the start of text), "constituent:PP" the tokens
// of the first constituent labelled PP of each reading's tree, and
// "neutral" reads the plain sentence.
type Ablation struct {
	Tokens      []int
	Constituent string
	Neutral     bool
}

// ParseAblation reads an Ablation.
func ParseAblation(s string) (Ablation, error) {
	kind, arg, _ := strings.Cut(s, ":")
	switch kind {
	case "neutral":
		if arg != "" {
			return Ablation{}, fmt.Errorf("%q: neutral takes no argument", s)
		}
		return Ablation{Neutral: true}, nil
	case "tokens":
		var a Ablation
		for f := range strings.SplitSeq(arg, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return Ablation{}, fmt.Errorf("%q: token %q is not a position ≥ 1 (0 is the start of text)", s, f)
			}
			a.Tokens = append(a.Tokens, n)
		}
		return a, nil
	case "constituent":
		// Treebank labels are letters, digits and the dashes and equals
		// of function tags (NP-SBJ, -NONE-); nothing else can match.
		bad := func(r rune) bool {
			return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '=' || r == '_' || r == '$')
		}
		if arg == "" || strings.ContainsFunc(arg, bad) {
			return Ablation{}, fmt.Errorf("%q: want a constituent label such as PP or NP", s)
		}
		return Ablation{Constituent: arg}, nil
	}
	return Ablation{}, fmt.Errorf("%q: want tokens:N,M, constituent:LABEL or neutral", s)
}

// Apply sets v's text change for the readings of p listed in readings (all
// of them when nil), whose trees tok encodes in style to at most context
// tokens.
func (a Ablation) Apply(v *Variant, p *loader.Pair, tok *tokenizer.Tokenizer, context int, style trees.Style, readings []int) error {
	if a.Neutral {
		v.Neutral = true
		return nil
	}
	if readings == nil {
		for r := range p.Readings {
			readings = append(readings, r)
		}
	}
	v.Drop = make([][]int, len(p.Readings))
	for _, r := range readings {
		if a.Constituent == "" {
			v.Drop[r] = a.Tokens
			continue
		}
		t, err := trees.Parse(p.Readings[r].Tree)
		if err != nil {
			return fmt.Errorf("pair %s: readings[%d].tree: %w", p.ID, r, err)
		}
		n := findLabel(t, a.Constituent)
		if n == nil {
			return fmt.Errorf("pair %s: reading %s's tree has no %s", p.ID, readingLetter(r), a.Constituent)
		}
		if v.Drop[r], err = ConstituentTokens(tok, context, trees.Linearize(t, style), n); err != nil {
			return err
		}
		if len(v.Drop[r]) == 0 {
			return errors.New("the constituent covers no token")
		}
	}
	return nil
}

// findLabel is the first node labelled label (case-insensitive), in
// pre-order.
func findLabel(n *trees.Node, label string) *trees.Node {
	if strings.EqualFold(n.Label, label) {
		return n
	}
	for _, c := range n.Children {
		if f := findLabel(c, label); f != nil {
			return f
		}
	}
	return nil
}

// MaskSpec names the boxes of each reading's image to fill, as
// `lavascope probe --mask-box` takes it: "evidence" for the evidence
// boxes, or N for the N-th box (from 1) of the image's list.
type MaskSpec struct {
	Evidence bool
	Index    int
}

// ParseMaskSpec reads a MaskSpec.
func ParseMaskSpec(s string) (MaskSpec, error) {
	if s == loader.RoleEvidence {
		return MaskSpec{Evidence: true}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return MaskSpec{}, fmt.Errorf("%q: want evidence or a box number from 1", s)
	}
	return MaskSpec{Index: n}, nil
}

// Apply sets v's masks for the images of p listed in readings (all of
// them when nil); an image without such a box is an error.
func (s MaskSpec) Apply(v *Variant, p *loader.Pair, readings []int) error {
	if readings == nil {
		for r := range p.Readings {
			readings = append(readings, r)
		}
	}
	v.Mask = make([][]loader.Box, len(p.Readings))
	for _, r := range readings {
		boxes := p.Readings[r].Boxes
		if s.Evidence {
			for _, b := range boxes {
				if b.Role == loader.RoleEvidence {
					v.Mask[r] = append(v.Mask[r], b)
				}
			}
		} else if s.Index <= len(boxes) {
			v.Mask[r] = boxes[s.Index-1 : s.Index]
		}
		if len(v.Mask[r]) == 0 {
			return fmt.Errorf("pair %s: image %s has no box %s (it has %d)", p.ID, readingLetter(r), s, len(boxes))
		}
	}
	return nil
}

func (s MaskSpec) String() string {
	if s.Evidence {
		return loader.RoleEvidence
	}
	return strconv.Itoa(s.Index)
}
