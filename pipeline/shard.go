package pipeline

// An explain run over several processes (ranks of a c10d group): each rank
// explains a contiguous share of the pairs (dist.Share) and writes their
// figures and reports itself into the shared --out folder; the rows of the
// CSV files travel to rank 0 through c10d's all-gather (Gather), which
// writes readings.csv and summary.csv over all of them (Finish) in the
// pairs' order.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/lavascope/lavascope/analysis"
	"github.com/lavascope/lavascope/dist"
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/torch"
)

// wireRow is a readingRow as it travels between ranks (gob).
type wireRow struct {
	Pair, Ambiguity string
	Reading         int
	Own, Twin       float64
	Metrics         *explain.Metrics
	// Analysis carries its own copy of Metrics; Gather points it back
	// at the row's.
	Analysis analysis.Row
}

// rankRows is what a rank sends: its rows, and the pairs the run was
// given, so that ranks given other data are caught.
type rankRows struct {
	Picked string
	Rows   []wireRow
}

// Gather replaces the rows this Explainer kept, on every rank of g, by
// every rank's rows in rank order: with contiguous shares, the rows of all
// the pairs in order, for Finish. picked are the indices of all the pairs
// of the run (before sharing out), which every rank must have been given.
func (r *Explainer) Gather(g *torch.ProcessGroup, picked []int) error {
	h := sha256.New()
	for _, i := range picked {
		p, err := r.split.Pair(i)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%q\n", p.ID)
	}
	mine := rankRows{Picked: hex.EncodeToString(h.Sum(nil))}
	for _, row := range r.rows {
		mine.Rows = append(mine.Rows, wireRow{Pair: row.pair, Ambiguity: row.ambiguity, Reading: row.reading, Own: row.own, Twin: row.twin, Metrics: row.m, Analysis: row.an})
	}
	var all []rankRows
	err := r.w.Do(func() (err error) {
		all, err = dist.Gather(g, r.m.Device(), mine)
		return err
	})
	if err != nil {
		return fmt.Errorf("gathering the explained readings: %w", err)
	}
	r.rows, r.all = nil, nil
	var measured []bool
	for k, rr := range all {
		if rr.Picked != mine.Picked {
			return fmt.Errorf("rank %d was given other pairs than rank %d (the data, --split, --pair or --limit differ): give every rank the same", k, g.Rank())
		}
		for _, w := range rr.Rows {
			if w.Metrics != nil {
				r.all = append(r.all, *w.Metrics)
			}
			measured = append(measured, w.Metrics != nil)
			r.rows = append(r.rows, readingRow{pair: w.Pair, ambiguity: w.Ambiguity, reading: w.Reading, own: w.Own, twin: w.Twin, an: w.Analysis})
		}
	}
	// The rows point into all, as write leaves them, once all is complete.
	k := 0
	for i := range r.rows {
		if measured[i] {
			r.rows[i].m = &r.all[k]
			k++
		}
		if r.rows[i].an.Metrics != nil {
			r.rows[i].an.Metrics = r.rows[i].m
		}
	}
	return nil
}
