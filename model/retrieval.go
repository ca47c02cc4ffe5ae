package model

import (
	"errors"
	"fmt"
)

// Retrieval over a whole split, as the authors' test script reports it
// beside the accuracy (FormalismCLIP's lavatest.py: R@1, R@5 and R@10 from
// text to image and from image to text), with duplicates and ties defined:
//
//   - Text to image: each reading's input is a query; the candidates are
//     the split's distinct images (identical pixels are one image, so a
//     picture shared by two readings is found by both); the reading's own
//     image is the one right answer.
//   - Image to text: each distinct image is a query; the candidates are the
//     inputs of every reading, one per reading; the right answers are the
//     readings of that image. Identical inputs are not merged: with text
//     input the two readings of a pair send the same sentence, which scores
//     the same against each image, so the twin reading's input ties with
//     the right one instead of counting as found.
//   - Ties: candidates with the same logit are taken in random order, and
//     R@K is the expected share of queries with a right answer in the top K
//     (a right answer tied with one wrong one for first place counts 0.5 at
//     R@1), the half-each rule of the accuracy. The authors rank with
//     torch.argsort, which leaves the order of ties to the implementation.

// RetrievalKs are the K of the recalls reported.
var RetrievalKs = [3]int{1, 5, 10}

// Recall is the retrieval recall at each of RetrievalKs, in percent.
type Recall struct {
	At1  float64 `json:"r_at_1"`
	At5  float64 `json:"r_at_5"`
	At10 float64 `json:"r_at_10"`
}

// Retrieval is the retrieval over all readings of a split.
type Retrieval struct {
	// Readings are the text-to-image queries, Images the distinct images
	// (the image-to-text queries and the text-to-image candidates).
	Readings int `json:"readings"`
	Images   int `json:"images"`
	// TextToImage and ImageToText are the recalls of each direction.
	TextToImage Recall `json:"text_to_image"`
	ImageToText Recall `json:"image_to_text"`
}

// RetrievalOf computes the retrieval of readings whose input is row
// textOf[r] and whose image is column imageOf[r] of logits, which holds
// every distinct input against every distinct image (logits[t][i]).
func RetrievalOf(logits [][]float64, textOf, imageOf []int) (*Retrieval, error) {
	if len(textOf) != len(imageOf) {
		return nil, fmt.Errorf("retrieval: %d inputs for %d images of readings", len(textOf), len(imageOf))
	}
	if len(textOf) == 0 || len(logits) == 0 {
		return nil, errors.New("retrieval: no readings")
	}
	images := len(logits[0])
	for t, row := range logits {
		if len(row) != images {
			return nil, fmt.Errorf("retrieval: row %d of the logits has %d images, row 0 %d", t, len(row), images)
		}
	}
	for r := range textOf {
		if textOf[r] < 0 || textOf[r] >= len(logits) || imageOf[r] < 0 || imageOf[r] >= images {
			return nil, fmt.Errorf("retrieval: reading %d at input %d, image %d, outside the %dx%d logits", r, textOf[r], imageOf[r], len(logits), images)
		}
	}
	res := &Retrieval{Readings: len(textOf), Images: images}
	var t2i, i2t [len(RetrievalKs)]float64

	// Text to image: one right candidate among the images.
	for r := range textOf {
		row := logits[textOf[r]]
		own := row[imageOf[r]]
		above, tied := 0, 0
		for i, v := range row {
			switch {
			case i == imageOf[r]:
			case v > own:
				above++
			case v == own:
				tied++
			}
		}
		for k, K := range RetrievalKs {
			t2i[k] += recallAt(K, above, tied, 1)
		}
	}

	// Image to text: the readings of the image are right, every reading's
	// input a candidate.
	queries := 0
	for i := range images {
		best, right := 0.0, 0
		for r := range textOf {
			if imageOf[r] != i {
				continue
			}
			v := logits[textOf[r]][i]
			switch {
			case right == 0 || v > best:
				best, right = v, 1
			case v == best:
				right++
			}
		}
		if right == 0 {
			// A column no reading has: not a query.
			continue
		}
		queries++
		above, tied := 0, 0
		for r := range textOf {
			if imageOf[r] == i {
				continue
			}
			switch v := logits[textOf[r]][i]; {
			case v > best:
				above++
			case v == best:
				tied++
			}
		}
		for k, K := range RetrievalKs {
			i2t[k] += recallAt(K, above, tied, right)
		}
	}
	res.Images = queries
	pct := func(sums [len(RetrievalKs)]float64, n int) Recall {
		return Recall{At1: 100 * sums[0] / float64(n), At5: 100 * sums[1] / float64(n), At10: 100 * sums[2] / float64(n)}
	}
	res.TextToImage = pct(t2i, len(textOf))
	res.ImageToText = pct(i2t, queries)
	return res, nil
}

// recallAt is the chance that a right candidate ranks in the top k when
// above wrong candidates score higher than the best right one, tied wrong
// ones score the same, right ones share that score, and ties are ordered
// at random.
func recallAt(k, above, tied, right int) float64 {
	slots := k - above
	switch {
	case slots <= 0:
		return 0
	case slots > tied:
		return 1
	}
	// No right candidate among the first slots of the tied group.
	miss := 1.0
	for i := range slots {
		miss *= float64(tied-i) / float64(tied+right-i)
	}
	return 1 - miss
}
