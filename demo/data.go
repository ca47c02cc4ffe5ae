package demo

import (
	"fmt"
	"image"
	"slices"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
)

// Name is the value of --checkpoint and --data that names the demo.
const Name = "demo"

// TrainPairs is the range of pair indices whose train split the demo model
// learned from: synthetic pairs 0 … TrainPairs-1 of the demo's seed that
// synth.SplitOf puts in train. The val and test splits are those of
// synth.Demo() (101 pairs each); the indices of different splits never
// meet, whatever the range, so no test pair is ever trained on.
const TrainPairs = 10100

// Seed and size of every demo pair.
var (
	seed = synth.Demo().Seed
	size = synth.DefaultSize
)

// Split returns a split of the demo data (train, val or test) whose pairs
// are drawn when asked for, so that even the large train split takes no
// memory. It is a model.Split.
func Split(name string) (*SynthSplit, error) {
	n := synth.Demo().Pairs
	switch name {
	case loader.SplitTrain:
		n = TrainPairs
	case loader.SplitVal, loader.SplitTest:
	default:
		return nil, fmt.Errorf("demo has no split %q (train, val, test)", name)
	}
	s := &SynthSplit{name: name, pairs: n}
	for i := range n {
		if synth.SplitOf(i) == name {
			s.idx = append(s.idx, i)
		}
	}
	return s, nil
}

// SynthSplit draws the pairs of one split of the synthetic generator.
type SynthSplit struct {
	name  string
	pairs int
	idx   []int
}

// Len is the number of pairs.
func (s *SynthSplit) Len() int { return len(s.idx) }

// Pair draws pair i, images included.
func (s *SynthSplit) Pair(i int) (loader.Pair, error) {
	if i < 0 || i >= len(s.idx) {
		return loader.Pair{}, fmt.Errorf("demo %s split: no pair %d of %d", s.name, i, len(s.idx))
	}
	return synth.Make(seed, s.idx[i], size), nil
}

// Find returns the position in the split of the pair with the given id,
// without drawing any pair.
func (s *SynthSplit) Find(id string) (int, bool) {
	i, ok := synth.IndexOf(id)
	if !ok || i >= s.pairs {
		return 0, false
	}
	return slices.BinarySearch(s.idx, i)
}

// Image returns the image a drawn reading holds.
func (s *SynthSplit) Image(r *loader.Reading) (image.Image, error) {
	if r.Pixels == nil {
		return nil, fmt.Errorf("demo %s split: reading %s has no pixels", s.name, r.Image)
	}
	return r.Pixels, nil
}

// Fingerprint names the split by how it is generated.
func (s *SynthSplit) Fingerprint() string {
	return fmt.Sprintf("synth seed %d size %d, %s split of pairs 0..%d", seed, size, s.name, s.pairs-1)
}

// FindPair finds the pair with id in the demo's splits: the split, its
// index there, and the pair.
func FindPair(id string) (*SynthSplit, int, loader.Pair, error) {
	for _, name := range loader.Splits {
		s, err := Split(name)
		if err != nil {
			return nil, 0, loader.Pair{}, err
		}
		if i, ok := s.Find(id); ok {
			p, err := s.Pair(i)
			return s, i, p, err
		}
	}
	return nil, 0, loader.Pair{}, fmt.Errorf("demo has no pair %q (ids look like pp-00009, adj-00019, vp-00029)", id)
}
