package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"time"
)

// Record is one row's result from one implementation. Its JSON is what
// `lavascope bench --json` and scripts/reference/hf_bench.py --json both
// print, one object per line; the field names are shared and must change
// in both together.
type Record struct {
	// Impl is lavascope, hf-default (eager attention, fp32: what the
	// reference notebook and a plain loop do) or hf-best (SDPA, TF32,
	// fused AdamW).
	Impl  string `json:"impl"`
	Work  string `json:"work"`
	Title string `json:"title"`
	// Config is vit-b-32, tiny, or the folder or file the model came from.
	Config string `json:"config"`
	// Device is cpu or cuda:N; DeviceName the card (or CPU) it names.
	Device     string `json:"device"`
	DeviceName string `json:"device_name"`
	DType      string `json:"dtype"`
	// Options says how the work ran (attention kernel, TF32, optimizer).
	Options string `json:"options"`
	// VsF32 states the accuracy of a lower precision against float32
	// (see Accuracy); empty for float32.
	VsF32 string `json:"vs_f32,omitempty"`
	// Pairs per run or step; Items = 2·Pairs images and texts.
	Pairs int `json:"pairs"`
	Items int `json:"items"`
	// TreeTokens is the content length of each text; TextLen the width
	// the texts were padded to.
	TreeTokens int `json:"tree_tokens"`
	TextLen    int `json:"text_len"`
	Warmup     int `json:"warmup"`
	Repeat     int `json:"repeat"`
	// Times of one run in milliseconds: median, quartiles, extremes.
	MedianMS float64 `json:"median_ms"`
	Q1MS     float64 `json:"q1_ms"`
	Q3MS     float64 `json:"q3_ms"`
	MinMS    float64 `json:"min_ms"`
	MaxMS    float64 `json:"max_ms"`
	// ItemsPerS is Items over the median time.
	ItemsPerS float64 `json:"items_per_s"`
	// PeakMemBytes is the most memory the CUDA caching allocator held in
	// tensors during the row, its preparation (a CUDA graph's capture)
	// included, and so weights and optimizer state; nil on the CPU.
	PeakMemBytes *int64 `json:"peak_mem_bytes"`
	// BindingCalls is how many ops one run called through lavascope's
	// libtorch binding (torch.Calls: device synchronisation and the copies
	// of data between the host and tensors not counted): the host overhead
	// a GPU pays per op, counted the same on any device. Nil for the
	// reference.
	BindingCalls *int64 `json:"binding_calls"`
	// Profile, with bench --profile, says where a run's time went; nil
	// otherwise and for the reference.
	Profile *Profile `json:"profile,omitempty"`
	// Threads is the CPU thread pool's size.
	Threads int `json:"threads"`
	// Versions names the software: "lavascope v…, libtorch 2.11.0" or
	// "torch 2.11.0, transformers 5.17.0".
	Versions string `json:"versions"`
}

// Stats fills the timing fields from the run times: quartiles are
// interpolated linearly between the sorted values (numpy's default, which
// the reference reproduces).
func (r *Record) Stats(times []time.Duration) {
	v := make([]float64, len(times))
	for i, t := range times {
		v[i] = ms(t)
	}
	slices.Sort(v)
	r.Repeat = len(v)
	if len(v) == 0 {
		return
	}
	r.MinMS, r.MaxMS = v[0], v[len(v)-1]
	r.Q1MS, r.MedianMS, r.Q3MS = quantile(v, 0.25), quantile(v, 0.5), quantile(v, 0.75)
	if r.MedianMS > 0 {
		r.ItemsPerS = float64(r.Items) / (r.MedianMS / 1000)
	}
}

// quantile of sorted values, interpolating between neighbours.
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (sorted[hi]-sorted[lo])*(pos-float64(lo))
}

// ReadRecords reads JSON records, one object per line (blank lines are
// skipped), as both benchmark programs print them.
func ReadRecords(r io.Reader, name string) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec Record
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return nil, fmt.Errorf("%s:%d: not a benchmark record: %w", name, line, err)
		}
		if rec.Impl == "" || rec.Work == "" {
			return nil, fmt.Errorf("%s:%d: record without impl or work", name, line)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// ReadRecordFiles reads the records of every file in order.
func ReadRecordFiles(paths []string) ([]Record, error) {
	var all []Record
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		recs, err := ReadRecords(f, p)
		f.Close()
		if err != nil {
			return nil, err
		}
		all = append(all, recs...)
	}
	return all, nil
}
