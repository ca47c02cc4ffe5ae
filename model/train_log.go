package model

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/lavascope/lavascope/internal/atomicfile"
)

// runLogFile is the run's metric log: one JSON object a line, with "event"
// "train" (every step), "eval" (every evaluation) or "best" (a new best/).
const runLogFile = "log.jsonl"

type runLog struct {
	f *os.File
}

// openRunLog opens out/log.jsonl for appending. A resumed run starts after
// step from, so lines of later steps (logged after the last checkpoint by a
// run that then died) are dropped first: the log then tells one history.
func openRunLog(out string, from int) (*runLog, error) {
	path := filepath.Join(out, runLogFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		var keep bytes.Buffer
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var rec struct {
				Step int `json:"step"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Step > from {
				continue
			}
			keep.Write(sc.Bytes())
			keep.WriteByte('\n')
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if keep.Len() != len(data) {
			if err := atomicfile.WriteBytes(path, keep.Bytes()); err != nil {
				return nil, err
			}
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &runLog{f: f}, nil
}

// write appends one record as one line, in one write.
func (l *runLog) write(rec map[string]any) error {
	for k, v := range rec {
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			rec[k] = fmt.Sprint(f)
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = l.f.Write(append(data, '\n'))
	return err
}

func (l *runLog) step(p *Progress) error {
	return l.write(map[string]any{
		"event": "train", "step": p.Step, "epoch": p.Epoch, "loss": p.Loss, "lr": p.LR,
		"grad_norm": p.GradNorm, "items_per_s": p.ItemsPerSec, "elapsed_s": p.Elapsed.Seconds(),
	})
}

func (l *runLog) eval(step int, r *EvalResult) error {
	fams := map[string]float64{}
	for _, f := range r.Families {
		fams[f.Family] = f.Accuracy
	}
	return l.write(map[string]any{
		"event": "eval", "step": step, "split": "val", "accuracy": r.Accuracy, "readings": r.Readings,
		"correct": r.Correct, "ties": r.Ties, "image_to_text_accuracy": r.ImageToText.Accuracy,
		"families": fams,
	})
}

func (l *runLog) trainLoss(step int, mean float64) error {
	return l.write(map[string]any{"event": "eval", "step": step, "split": "train", "mean_loss": mean})
}

func (l *runLog) best(step int, metric string, value float64) error {
	return l.write(map[string]any{"event": "best", "step": step, "metric": metric, "value": value})
}

func (l *runLog) Close() error { return l.f.Close() }
