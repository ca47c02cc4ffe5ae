package model

import (
	"math"
	"testing"
)

// TestFirstArgmax: the authors' rule gives a tie to the first of the
// highest, as torch.argmax does.
func TestFirstArgmax(t *testing.T) {
	for _, tc := range []struct {
		v    []float64
		want int
	}{
		{[]float64{1, 2}, 1},
		{[]float64{2, 2}, 0},
		{[]float64{1, 3, 3}, 1},
		{[]float64{-1, -1, -2}, 0},
	} {
		if got := firstArgmax(tc.v); got != tc.want {
			t.Errorf("firstArgmax(%v) = %d, want %d", tc.v, got, tc.want)
		}
	}
}

func TestRecallAt(t *testing.T) {
	for _, tc := range []struct {
		k, above, tied, right int
		want                  float64
	}{
		{1, 0, 0, 1, 1},
		{1, 1, 0, 1, 0},
		{1, 0, 1, 1, 0.5},
		{5, 3, 4, 1, 0.4}, // 2 places for 5 tied: 2/5
		{1, 0, 1, 2, 2.0 / 3},
		{10, 2, 3, 1, 1},
		{5, 5, 0, 1, 0},
	} {
		if got := recallAt(tc.k, tc.above, tc.tied, tc.right); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("recallAt(%d, %d, %d, %d) = %g, want %g", tc.k, tc.above, tc.tied, tc.right, got, tc.want)
		}
	}
}

// TestRetrievalOf on a hand-built split of four readings: readings 2 and 3
// send the same input (row 2), as text input does; each has its own image.
func TestRetrievalOf(t *testing.T) {
	logits := [][]float64{
		{5, 1, 1, 0}, // reading 0: its image first
		{3, 3, 2, 9}, // reading 1: image 3 above, image 0 tied
		{0, 0, 4, 4}, // readings 2 and 3: their two images tie
	}
	textOf, imageOf := []int{0, 1, 2, 2}, []int{0, 1, 2, 3}
	r, err := RetrievalOf(logits, textOf, imageOf)
	if err != nil {
		t.Fatal(err)
	}
	// Text to image, R@1: 1 + 0 + ½ + ½ of 4.
	// Image to text, R@1: image 0 and 1 find their reading; image 2 ties
	// its reading with reading 3's identical input (½); image 3 has
	// reading 1 above (0). R@5: every right answer is within 5.
	want := Retrieval{Readings: 4, Images: 4,
		TextToImage: Recall{At1: 50, At5: 100, At10: 100},
		ImageToText: Recall{At1: 62.5, At5: 100, At10: 100}}
	if *r != want {
		t.Errorf("retrieval %+v, want %+v", *r, want)
	}

	// Two readings of one picture: the image is one candidate and one
	// query, found by both readings and finding either.
	r, err = RetrievalOf([][]float64{{2, 1}, {2, 3}, {0, 1}}, []int{0, 1, 2}, []int{0, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	// Text to image: reading 0 right, reading 1 (image 1 above) wrong,
	// reading 2 right. Image to text: image 0's best right input (2, tied
	// by none) is first; image 1's input (1) is below reading 1's (3).
	want = Retrieval{Readings: 3, Images: 2,
		TextToImage: Recall{At1: 200.0 / 3, At5: 100, At10: 100},
		ImageToText: Recall{At1: 50, At5: 100, At10: 100}}
	if math.Abs(r.TextToImage.At1-want.TextToImage.At1) > 1e-9 || r.ImageToText != want.ImageToText || r.Images != 2 {
		t.Errorf("shared image: %+v, want %+v", *r, want)
	}

	for _, bad := range []struct {
		logits          [][]float64
		textOf, imageOf []int
	}{
		{logits, []int{0}, []int{0, 1}},
		{logits, []int{3}, []int{0}},
		{logits, []int{0}, []int{4}},
		{[][]float64{{1, 2}, {1}}, []int{0}, []int{0}},
		{nil, nil, nil},
	} {
		if _, err := RetrievalOf(bad.logits, bad.textOf, bad.imageOf); err == nil {
			t.Errorf("RetrievalOf(%v, %v, %v): no error", bad.logits, bad.textOf, bad.imageOf)
		}
	}
}
