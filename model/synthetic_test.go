package model

import (
	"slices"
	"testing"
)

func demoText() *TextConfig {
	c := DefaultTextConfig()
	c.VocabSize, c.BOSTokenID, c.EOSTokenID, c.PadTokenID = 1000, 498, 499, 1
	return &c
}

func TestSyntheticIDs(t *testing.T) {
	vit, err := NamedConfig("vit-b-32")
	if err != nil {
		t.Fatal(err)
	}
	tiny, err := NamedConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name          string
		text          *TextConfig
		bos, eos, pad int64
	}{
		{"vit-b-32 (argmax pooling)", &vit.Text, 49406, 49407, 0},
		{"tiny", &tiny.Text, 49406, 49407, 1},
		{"demo vocabulary", demoText(), 498, 499, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			const n, tokens, width = 3, 56, 77
			ids, err := SyntheticIDs(c.text, n, tokens, width, 7)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != n*width {
				t.Fatalf("%d ids, want %d", len(ids), n*width)
			}
			for i := range n {
				row := ids[i*width : (i+1)*width]
				if row[0] != c.bos || row[tokens+1] != c.eos {
					t.Errorf("row %d: starts %d, ends %d; want %d, %d", i, row[0], row[tokens+1], c.bos, c.eos)
				}
				for j, id := range row[1 : tokens+1] {
					if id < 1 || id >= min(c.bos, c.eos) {
						t.Fatalf("row %d position %d: content id %d is special or outside the vocabulary", i, j+1, id)
					}
				}
				for _, id := range row[tokens+2:] {
					if id != c.pad {
						t.Fatalf("row %d: padding %d, want %d", i, id, c.pad)
					}
				}
				// The model pools where the text ends.
				pool := slices.Index(row, int64(c.text.EOSTokenID))
				if c.text.PoolsAtArgmax() {
					pool = slices.Index(row, slices.Max(row))
				}
				if pool != tokens+1 {
					t.Errorf("row %d is pooled at %d, want %d", i, pool, tokens+1)
				}
			}
			again, _ := SyntheticIDs(c.text, n, tokens, width, 7)
			other, _ := SyntheticIDs(c.text, n, tokens, width, 8)
			if !slices.Equal(ids, again) || slices.Equal(ids, other) {
				t.Errorf("ids are not a function of the seed")
			}
		})
	}
	if _, err := SyntheticIDs(&vit.Text, 1, 76, 77, 1); err == nil {
		t.Errorf("76 tokens in 77 positions: no error")
	}
	if _, err := SyntheticIDs(&vit.Text, 1, 56, 78, 1); err == nil {
		t.Errorf("width 78 beyond 77 positions: no error")
	}
}
