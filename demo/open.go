package demo

import (
	"fmt"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
)

// OpenSplit opens one split (train, val or test) of data: a manifest, or
// Name for the demo's pairs. Errors name --split, the flag that chose it.
func OpenSplit(data, split string, opts loader.Options) (model.Split, error) {
	if data == Name {
		s, err := Split(split)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	switch split {
	case loader.SplitTrain, loader.SplitVal, loader.SplitTest:
	default:
		return nil, fmt.Errorf("--split %q: want train, val or test", split)
	}
	ds, err := loader.Load(data, opts)
	if err != nil {
		return nil, err
	}
	s := model.DatasetSplit(ds, split)
	if s.Len() == 0 {
		counts := map[string]int{}
		for _, p := range ds.Pairs {
			counts[p.Split]++
		}
		return nil, fmt.Errorf("%s has no pairs in the %s split (train %d, val %d, test %d)", data, split,
			counts[loader.SplitTrain], counts[loader.SplitVal], counts[loader.SplitTest])
	}
	return s, nil
}

// PickPairs opens data (a manifest, or Name for the demo's pairs) and picks
// pairs from it: the one named by id (searched in every split), or those of
// split (also "all" for a manifest), at most limit (0: all).
func PickPairs(data, split, id string, limit int, opts loader.Options) (model.Split, []int, error) {
	var candidates []model.Split
	if data == Name {
		names := []string{split}
		if id != "" {
			names = []string{loader.SplitTest, loader.SplitVal, loader.SplitTrain}
		}
		for _, n := range names {
			s, err := Split(n)
			if err != nil {
				return nil, nil, fmt.Errorf("--split: %w", err)
			}
			candidates = append(candidates, s)
		}
	} else {
		switch split {
		case "all":
			split = ""
		case loader.SplitTrain, loader.SplitVal, loader.SplitTest:
		default:
			return nil, nil, fmt.Errorf("--split %q: want train, val, test or all", split)
		}
		ds, err := loader.Load(data, opts)
		if err != nil {
			return nil, nil, err
		}
		if id != "" {
			split = ""
		}
		candidates = append(candidates, model.DatasetSplit(ds, split))
	}
	for _, s := range candidates {
		var idx []int
		for i := range s.Len() {
			if id != "" {
				p, err := s.Pair(i)
				if err != nil {
					return nil, nil, err
				}
				if p.ID != id {
					continue
				}
			}
			idx = append(idx, i)
			if limit > 0 && len(idx) == limit {
				break
			}
		}
		if len(idx) > 0 {
			return s, idx, nil
		}
	}
	if id != "" {
		return nil, nil, fmt.Errorf("%s has no pair %q", data, id)
	}
	return nil, nil, fmt.Errorf("%s has no pairs in split %q", data, split)
}

// TrainSplits opens the train and val splits of data (a manifest, or Name
// for the demo's pairs) and names them for a run's log.
func TrainSplits(data string, opts loader.Options) (train, val model.Split, name string, err error) {
	if data == Name {
		tr, err := Split(loader.SplitTrain)
		if err != nil {
			return nil, nil, "", err
		}
		va, err := Split(loader.SplitVal)
		if err != nil {
			return nil, nil, "", err
		}
		return tr, va, "the demo's synthetic pairs", nil
	}
	ds, err := loader.Load(data, opts)
	if err != nil {
		return nil, nil, "", err
	}
	train = model.DatasetSplit(ds, loader.SplitTrain)
	if train.Len() == 0 {
		return nil, nil, "", fmt.Errorf("%s has no pairs in the train split", data)
	}
	return train, model.DatasetSplit(ds, loader.SplitVal), data, nil
}
