package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// value is a row's headline: its median time, or for training its
// throughput.
func value(r *Record) string {
	if kindOf(r.Work) == Train {
		return fmt.Sprintf("%.0f items/s", r.ItemsPerS)
	}
	return formatMS(r.MedianMS)
}

func kindOf(work string) Kind {
	k, _, _ := strings.Cut(work, "-")
	return Kind(k)
}

func formatMS(ms float64) string {
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.2f ms", ms)
}

func formatCalls(n *int64) string {
	if n == nil {
		return "–"
	}
	return fmt.Sprint(*n)
}

func formatMem(b *int64) string {
	if b == nil {
		return "–"
	}
	return fmt.Sprintf("%.2f GiB", float64(*b)/(1<<30))
}

// WriteTable writes one implementation's records as a plain table: the
// median with its quartiles and extremes, the throughput, the peak CUDA
// memory and the binding calls per run.
func WriteTable(w io.Writer, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	r0 := recs[0]
	fmt.Fprintf(w, "%s on %s (%s), config %s, %s; %d warm-up and %d timed runs each\n",
		r0.Impl, r0.Device, r0.DeviceName, r0.Config, r0.DType, r0.Warmup, r0.Repeat)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "work\tmedian\tq1–q3\tmin–max\titems/s\tpeak CUDA mem\tcalls")
	for i := range recs {
		r := &recs[i]
		fmt.Fprintf(tw, "%s\t%s\t%s–%s\t%s–%s\t%.1f\t%s\t%s\n", r.Title, formatMS(r.MedianMS),
			formatMS(r.Q1MS), formatMS(r.Q3MS), formatMS(r.MinMS), formatMS(r.MaxMS), r.ItemsPerS, formatMem(r.PeakMemBytes), formatCalls(r.BindingCalls))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeAccuracy(w, recs)
}

// column is one implementation in the comparison.
func column(r *Record) string {
	if strings.HasPrefix(r.Impl, "lavascope") && r.DType != "f32" {
		return r.Impl + " " + r.DType
	}
	return r.Impl
}

// WriteComparison writes the records of several implementations side by
// side, one line per work item: each implementation's headline (median
// time, or items/s for training); then for lavascope's fastest float32
// variant (plain, +tf32, +graphs, …, named in "with"): its speed-up over
// hf-default and hf-best, the target and whether it meets it, its
// peak CUDA memory and its binding calls per run. With markdown the table
// is a Markdown table, as docs/performance.md holds them.
func WriteComparison(w io.Writer, recs []Record, markdown bool) error {
	if len(recs) == 0 {
		return fmt.Errorf("no records to compare")
	}
	cols := []string{"hf-default", "hf-best", "lavascope"}
	var works []string
	byKey := map[[2]string]*Record{}
	var devices, configs []string
	for i := range recs {
		r := &recs[i]
		c := column(r)
		if !slices.Contains(cols, c) {
			cols = append(cols, c)
		}
		if !slices.Contains(works, r.Work) {
			works = append(works, r.Work)
		}
		byKey[[2]string{r.Work, c}] = r
		if d := r.Device + " " + r.DeviceName; !slices.Contains(devices, d) {
			devices = append(devices, d)
		}
		if !slices.Contains(configs, r.Config) {
			configs = append(configs, r.Config)
		}
	}
	fmt.Fprintf(w, "config %s on %s\n", strings.Join(configs, ", "), strings.Join(devices, "; "))
	if len(devices) > 1 || len(configs) > 1 {
		fmt.Fprintln(w, "WARNING: the records come from different devices or configs; the ratios compare unlike runs")
	}
	rows := [][]string{append(append([]string{"work"}, cols...), "with", "× default", "× best", "target", "met", "peak mem", "calls")}
	for _, wk := range works {
		var title string
		for _, c := range cols {
			if r := byKey[[2]string{wk, c}]; r != nil && title == "" {
				title = r.Title
			}
		}
		row := []string{title}
		var lv *Record
		for _, c := range cols {
			r := byKey[[2]string{wk, c}]
			if r == nil {
				row = append(row, "–")
				continue
			}
			row = append(row, value(r))
			if strings.HasPrefix(r.Impl, "lavascope") && r.DType == "f32" && r.MedianMS > 0 && (lv == nil || r.MedianMS < lv.MedianMS) {
				lv = r
			}
		}
		with, target, met, mem, calls := "–", "–", "–", "–", "–"
		if lv != nil {
			with, mem, calls = lv.Impl, formatMem(lv.PeakMemBytes), formatCalls(lv.BindingCalls)
			if t, ok := TargetFor(lv); ok {
				target, met = t.String(), "no"
				if t.Met(lv) {
					met = "yes"
				}
			}
		}
		row = append(row, with, speedup(byKey[[2]string{wk, "hf-default"}], lv), speedup(byKey[[2]string{wk, "hf-best"}], lv), target, met, mem, calls)
		rows = append(rows, row)
	}
	if err := writeRows(w, rows, markdown); err != nil {
		return err
	}
	return writeAccuracy(w, recs)
}

// writeRows writes a table whose first row is the header, aligned in
// columns or as Markdown.
func writeRows(w io.Writer, rows [][]string, markdown bool) error {
	if markdown {
		for i, r := range rows {
			if _, err := fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | ")); err != nil {
				return err
			}
			if i == 0 {
				sep := make([]string, len(r))
				for k := range sep {
					sep[k] = "---"
				}
				if _, err := fmt.Fprintf(w, "| %s |\n", strings.Join(sep, " | ")); err != nil {
					return err
				}
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// writeAccuracy lists the distinct accuracy statements of the records.
func writeAccuracy(w io.Writer, recs []Record) error {
	var seen []string
	for i := range recs {
		if a := recs[i].VsF32; a != "" && !slices.Contains(seen, a) {
			seen = append(seen, a)
			if _, err := fmt.Fprintf(w, "accuracy: %s\n", a); err != nil {
				return err
			}
		}
	}
	return nil
}

// speedup is how many times faster lavascope ran than ref: the ratio of
// the median times (for training, of the throughputs).
func speedup(ref, lv *Record) string {
	if ref == nil || lv == nil || lv.MedianMS <= 0 || ref.MedianMS <= 0 {
		return "–"
	}
	if lv.Items != ref.Items {
		return "≠ items"
	}
	return fmt.Sprintf("%.2f×", ref.MedianMS/lv.MedianMS)
}
