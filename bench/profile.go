package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/torch"
)

// Profile says where a row's time went, from libtorch's profiler over a few
// runs after the timed ones. On a GPU its first line answers what a timing
// cannot: with the card busy for most of a run only faster kernels help;
// with the card mostly idle the host, launching kernels, is the bound.
type Profile struct {
	// Runs is how many runs the profiler watched; every figure below is
	// per run.
	Runs int `json:"runs"`
	// WallMS is a run's time with the profiler on (longer than the row's
	// median: the profiler costs host time per op).
	WallMS float64 `json:"wall_ms"`
	// HostMS is the host's time in libtorch's ops and CUDA calls, less
	// WaitMS: its time waiting for a GPU (in calls named …Synchronize and
	// cudaMemcpy…, which a read-back makes, and in launches stalled by a
	// full queue). WallMS less both is the time outside them: the binding,
	// Go, the profiler (its own records are left out of HostMS and Top).
	HostMS float64 `json:"host_ms"`
	WaitMS float64 `json:"wait_ms"`
	// GPUBusyMS is the time at least one kernel or copy ran on a GPU; nil
	// without GPU events.
	GPUBusyMS *float64 `json:"gpu_busy_ms,omitempty"`
	// Invalid counts the events left out because the profiler's clock
	// failed on them (an end before the start: CUPTI does this to a few
	// kernels; see torch.ProfileEvent).
	Invalid int `json:"invalid_events,omitempty"`
	// Top are the ops and kernels that took the most time, busiest first:
	// up to ProfileTop on the host (by self time) and as many on the GPU.
	Top []ProfileEntry `json:"top"`
	// Trace is the file the profiled runs' events were written to (Options.
	// TraceDir), empty when none was.
	Trace string `json:"trace,omitempty"`
}

// ProfileEntry is the time of one op or kernel name per run.
type ProfileEntry struct {
	Name string `json:"name"`
	// Device is "host" or "gpu".
	Device string `json:"device"`
	// Calls per run.
	Calls float64 `json:"calls"`
	// MS is the time per run; on the host the op's self time, the time not
	// spent in ops it called.
	MS float64 `json:"ms"`
}

// ProfileTop is how many names per device a Profile keeps.
const ProfileTop = 12

// maxProfileName bounds a name in the records, in bytes: a templated
// kernel's name runs to thousands of characters.
const maxProfileName = 240

// profileRuns runs a row's work runs times under libtorch's profiler and,
// with trace not empty, writes the events there (writeTrace).
func profileRuns(run, sync func() error, runs int, gpu bool, trace string) (*Profile, error) {
	if err := sync(); err != nil {
		return nil, err
	}
	if err := torch.StartProfile(gpu); err != nil {
		return nil, err
	}
	start := time.Now()
	var runErr error
	for range runs {
		if runErr = run(); runErr != nil {
			break
		}
	}
	if runErr == nil {
		runErr = sync()
	}
	wall := time.Since(start)
	evs, err := torch.StopProfile()
	if runErr != nil {
		return nil, runErr
	}
	if err != nil {
		return nil, err
	}
	evs, invalid := dropInvalid(evs)
	p := summarize(evs, runs)
	p.WallMS = ms(wall) / float64(runs)
	p.Invalid = invalid
	if trace != "" {
		if err := atomicfile.Write(trace, func(w io.Writer) error { return writeTrace(w, evs) }); err != nil {
			return nil, err
		}
		p.Trace = trace
	}
	return p, nil
}

// traceEvent is an event of Chrome's trace event format, which Perfetto
// (ui.perfetto.dev) and chrome://tracing open: a complete event ("X") with
// its start and duration in microseconds, or metadata ("M").
type traceEvent struct {
	Name string            `json:"name"`
	Ph   string            `json:"ph"`
	Pid  int               `json:"pid"`
	Tid  uint64            `json:"tid"`
	Ts   float64           `json:"ts"`
	Dur  float64           `json:"dur"`
	Args map[string]string `json:"args,omitempty"`
}

// dropInvalid removes the events whose end precedes their start (the
// profiler's clock failed on them; see torch.ProfileEvent) and counts them.
func dropInvalid(evs []torch.ProfileEvent) ([]torch.ProfileEvent, int) {
	n := len(evs)
	evs = slices.DeleteFunc(evs, func(e torch.ProfileEvent) bool { return e.Duration < 0 })
	return evs, n - len(evs)
}

// writeTrace writes profiler events as a trace in Chrome's trace event
// format: the host's ops as process 0, one track per thread, and the GPUs'
// kernels and copies as process 1, one track per stream, on a clock that
// starts at the first event.
func writeTrace(w io.Writer, evs []torch.ProfileEvent) error {
	out := []traceEvent{
		{Name: "process_name", Ph: "M", Pid: 0, Args: map[string]string{"name": "host"}},
		{Name: "process_name", Ph: "M", Pid: 1, Args: map[string]string{"name": "GPU"}},
	}
	var origin time.Duration
	if len(evs) > 0 {
		origin = slices.MinFunc(evs, func(a, b torch.ProfileEvent) int { return cmp.Compare(a.Start, b.Start) }).Start
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	for _, e := range evs {
		pid := 0
		if e.GPU {
			pid = 1
		}
		out = append(out, traceEvent{Name: e.Name, Ph: "X", Pid: pid, Tid: e.Thread, Ts: us(e.Start - origin), Dur: us(e.Duration)})
	}
	enc := json.NewEncoder(w)
	return enc.Encode(struct {
		TraceEvents     []traceEvent `json:"traceEvents"`
		DisplayTimeUnit string       `json:"displayTimeUnit"`
	}{out, "ms"})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type tally struct {
	calls int
	time  time.Duration
}

// summarize turns events (dropInvalid's) into a per-run Profile: self time
// per host op name (an op's duration less its nested ops', on its thread),
// split into work and waits for the GPU, and time per GPU kernel name.
func summarize(evs []torch.ProfileEvent, runs int) *Profile {
	host := map[string]*tally{}
	gpu := map[string]*tally{}
	add := func(m map[string]*tally, name string, d time.Duration) {
		t := m[name]
		if t == nil {
			t = &tally{}
			m[name] = t
		}
		t.calls++
		t.time += d
	}
	byThread := map[uint64][]torch.ProfileEvent{}
	var kernels []torch.ProfileEvent
	for _, e := range evs {
		if e.GPU {
			add(gpu, e.Name, e.Duration)
			kernels = append(kernels, e)
		} else {
			byThread[e.Thread] = append(byThread[e.Thread], e)
		}
	}
	var busyHost, wait time.Duration
	for _, es := range byThread {
		// Parents before their children: by start, the longer first.
		slices.SortStableFunc(es, func(a, b torch.ProfileEvent) int {
			return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(b.Duration, a.Duration))
		})
		self := make([]time.Duration, len(es))
		var stack []int
		for i, e := range es {
			self[i] = e.Duration
			// An op that starts inside another is its child even if it
			// ends after it: whole-microsecond clocks (libtorch 1.13)
			// round the start and the duration each on its own.
			for len(stack) > 0 && e.Start >= es[stack[len(stack)-1]].End() {
				stack = stack[:len(stack)-1]
			}
			if len(stack) > 0 {
				self[stack[len(stack)-1]] -= e.Duration
			}
			stack = append(stack, i)
		}
		for i, e := range es {
			if profilerOwn(e.Name) {
				continue
			}
			// The same rounding can make children outlast their parent.
			d := max(self[i], 0)
			add(host, e.Name, d)
			if waits(e.Name) {
				wait += d
			} else {
				busyHost += d
			}
		}
	}
	n := float64(runs)
	p := &Profile{Runs: runs, HostMS: ms(busyHost) / n, WaitMS: ms(wait) / n}
	if len(kernels) > 0 {
		busy := ms(union(kernels)) / n
		p.GPUBusyMS = &busy
	}
	p.Top = append(top(host, "host", n), top(gpu, "gpu", n)...)
	return p
}

// waits says whether a host call named name waits for a GPU: a
// synchronisation; a copy, which waits for the work queued before it (a
// read-back's copy to pageable memory returns only when done); or a launch
// stalled because the GPU's queue is full (CUPTI's "Command Buffer Full").
func waits(name string) bool {
	return strings.HasSuffix(name, "Synchronize") || strings.HasPrefix(name, "cudaMemcpy") || name == "Command Buffer Full"
}

// profilerOwn says whether a host event named name is the profiler's own
// work (CUPTI's overhead records, as Kineto names them), which is not the
// row's: it counts as time outside libtorch.
func profilerOwn(name string) bool {
	switch name {
	case "Activity Buffer Request", "Buffer Flush", "Instrumentation", "Resource", "UVM Activity Init":
		return true
	}
	return false
}

// union is the time covered by at least one of the events.
func union(evs []torch.ProfileEvent) time.Duration {
	evs = slices.Clone(evs)
	slices.SortFunc(evs, func(a, b torch.ProfileEvent) int { return cmp.Compare(a.Start, b.Start) })
	var total time.Duration
	var from, to time.Duration
	for i, e := range evs {
		if i == 0 || e.Start > to {
			total += to - from
			from, to = e.Start, e.End()
			continue
		}
		to = max(to, e.End())
	}
	return total + to - from
}

func top(m map[string]*tally, device string, runs float64) []ProfileEntry {
	var out []ProfileEntry
	for name, t := range m {
		if len(name) > maxProfileName {
			name = strings.ToValidUTF8(name[:maxProfileName], "") + "…"
		}
		out = append(out, ProfileEntry{Name: name, Device: device, Calls: float64(t.calls) / runs, MS: ms(t.time) / runs})
	}
	slices.SortFunc(out, func(a, b ProfileEntry) int {
		return cmp.Or(cmp.Compare(b.MS, a.MS), cmp.Compare(a.Name, b.Name))
	})
	return out[:min(len(out), ProfileTop)]
}

// WriteProfiles writes the profile of every record that has one: the
// run's time with the profiler on, how the host spent it, the GPU's busy
// time, and the busiest ops and kernels.
func WriteProfiles(w io.Writer, recs []Record) error {
	for _, r := range recs {
		p := r.Profile
		if p == nil {
			continue
		}
		runs := fmt.Sprintf("%d runs", p.Runs)
		if p.Runs == 1 {
			runs = "1 run"
		}
		fmt.Fprintf(w, "\nprofile of %s (%s, %s): %s under libtorch's profiler, %s a run with it on\n",
			r.Work, r.Impl, r.Title, runs, formatMS(p.WallMS))
		fmt.Fprintf(w, "  host: %s a run in libtorch", formatMS(p.HostMS))
		if p.WaitMS > 0 {
			fmt.Fprintf(w, ", %s waiting for the GPU", formatMS(p.WaitMS))
		}
		fmt.Fprintf(w, ", %s outside libtorch (the binding, Go, the profiler)", formatMS(max(p.WallMS-p.HostMS-p.WaitMS, 0)))
		if p.GPUBusyMS != nil {
			fmt.Fprintf(w, "; GPU busy %s a run (%.0f%% of the run)", formatMS(*p.GPUBusyMS), 100**p.GPUBusyMS/p.WallMS)
		}
		fmt.Fprintln(w)
		if p.Invalid > 0 {
			fmt.Fprintf(w, "  %d events left out: the profiler's clock gave them an end before their start\n", p.Invalid)
		}
		if p.Trace != "" {
			fmt.Fprintf(w, "  trace: %s (Chrome's trace format: ui.perfetto.dev or chrome://tracing)\n", p.Trace)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  \tms a run\tcalls a run\t")
		for _, e := range p.Top {
			name := e.Name
			if r := []rune(name); len(r) > 90 {
				name = string(r[:89]) + "…"
			}
			fmt.Fprintf(tw, "  %s\t%.3f\t%.0f\t  %s\n", e.Device, e.MS, e.Calls, name)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
