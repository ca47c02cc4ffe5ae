package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
)

func ev(name string, gpu bool, thread uint64, start, dur time.Duration) torch.ProfileEvent {
	return torch.ProfileEvent{Name: name, GPU: gpu, Thread: thread, Start: start * time.Microsecond, Duration: dur * time.Microsecond}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name    string
		evs     []torch.ProfileEvent
		runs    int
		host    float64
		wait    float64
		gpuBusy float64 // -1: no GPU events
		wantTop []ProfileEntry
	}{
		{
			name: "nested ops on two threads, kernels overlapping on two streams",
			evs: []torch.ProfileEvent{
				// Thread 1: linear (100 µs) calls addmm (60), which calls
				// copy_ (10); then relu (20). Listed out of order.
				ev("aten::addmm", false, 1, 20, 60),
				ev("aten::linear", false, 1, 0, 100),
				ev("aten::copy_", false, 1, 30, 10),
				ev("aten::relu", false, 1, 200, 20),
				// Thread 2 (autograd's): one op at the same time.
				ev("aten::mm", false, 2, 50, 40),
				// Kernels: 0–30 and 20–50 overlap (busy 50), then 100–110.
				ev("gemm", true, 7, 0, 30),
				ev("gemm", true, 8, 20, 30),
				ev("relu_kernel", true, 7, 100, 10),
			},
			runs:    2,
			host:    (100 + 20 + 40) / 2 / 1000.0,
			gpuBusy: 60 / 2 / 1000.0,
			wantTop: []ProfileEntry{
				{Name: "aten::addmm", Device: "host", Calls: 0.5, MS: 0.025},
				{Name: "aten::linear", Device: "host", Calls: 0.5, MS: 0.02},
				{Name: "aten::mm", Device: "host", Calls: 0.5, MS: 0.02},
				{Name: "aten::relu", Device: "host", Calls: 0.5, MS: 0.01},
				{Name: "aten::copy_", Device: "host", Calls: 0.5, MS: 0.005},
				{Name: "gemm", Device: "gpu", Calls: 1, MS: 0.03},
				{Name: "relu_kernel", Device: "gpu", Calls: 0.5, MS: 0.005},
			},
		},
		{
			// libtorch 1.13 rounds to whole microseconds.
			name: "children summing to more than their parent leave it no self time",
			evs: []torch.ProfileEvent{
				ev("aten::matmul", false, 1, 0, 3),
				ev("aten::mm", false, 1, 0, 2),
				// Starts as mm ends, ends after matmul: matmul's child.
				ev("aten::copy_", false, 1, 2, 2),
			},
			runs:    1,
			host:    0.004,
			gpuBusy: -1,
			wantTop: []ProfileEntry{
				{Name: "aten::copy_", Device: "host", Calls: 1, MS: 0.002},
				{Name: "aten::mm", Device: "host", Calls: 1, MS: 0.002},
				{Name: "aten::matmul", Device: "host", Calls: 1, MS: 0},
			},
		},
		{
			name: "a child that outlasts its parent by rounding is counted once",
			evs: []torch.ProfileEvent{
				ev("aten::linear", false, 1, 0, 10),
				ev("aten::addmm", false, 1, 5, 6),
			},
			runs:    1,
			host:    0.010,
			gpuBusy: -1,
			wantTop: []ProfileEntry{
				{Name: "aten::addmm", Device: "host", Calls: 1, MS: 0.006},
				{Name: "aten::linear", Device: "host", Calls: 1, MS: 0.004},
			},
		},
		{
			name: "waits for the GPU apart, in an op or not",
			evs: []torch.ProfileEvent{
				ev("aten::copy_", false, 1, 0, 100),
				ev("cudaMemcpyAsync", false, 1, 5, 10),
				ev("cudaStreamSynchronize", false, 1, 20, 70),
				ev("cudaGraphLaunch", false, 1, 200, 15),
				ev("cudaDeviceSynchronize", false, 1, 300, 50),
			},
			runs:    1,
			host:    0.035,
			wait:    0.130,
			gpuBusy: -1,
			wantTop: []ProfileEntry{
				{Name: "cudaStreamSynchronize", Device: "host", Calls: 1, MS: 0.07},
				{Name: "cudaDeviceSynchronize", Device: "host", Calls: 1, MS: 0.05},
				{Name: "aten::copy_", Device: "host", Calls: 1, MS: 0.02},
				{Name: "cudaGraphLaunch", Device: "host", Calls: 1, MS: 0.015},
				{Name: "cudaMemcpyAsync", Device: "host", Calls: 1, MS: 0.01},
			},
		},
		{
			name: "the profiler's own records left out, a stalled launch waits",
			evs: []torch.ProfileEvent{
				ev("cudaLaunchKernel", false, 1, 0, 100),
				ev("Command Buffer Full", false, 1, 10, 60),
				ev("Activity Buffer Request", false, 1, 80, 15),
				ev("Activity Buffer Request", false, 2, 0, 40),
			},
			runs:    1,
			host:    0.025,
			wait:    0.06,
			gpuBusy: -1,
			wantTop: []ProfileEntry{
				{Name: "Command Buffer Full", Device: "host", Calls: 1, MS: 0.06},
				{Name: "cudaLaunchKernel", Device: "host", Calls: 1, MS: 0.025},
			},
		},
		{name: "nothing", runs: 3, gpuBusy: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := summarize(tc.evs, tc.runs)
			if p.Runs != tc.runs || !near(p.HostMS, tc.host) || !near(p.WaitMS, tc.wait) {
				t.Errorf("runs %d, host %g ms, wait %g ms; want %d, %g, %g", p.Runs, p.HostMS, p.WaitMS, tc.runs, tc.host, tc.wait)
			}
			switch {
			case tc.gpuBusy < 0 && p.GPUBusyMS != nil:
				t.Errorf("GPU busy %g ms without GPU events", *p.GPUBusyMS)
			case tc.gpuBusy >= 0 && (p.GPUBusyMS == nil || !near(*p.GPUBusyMS, tc.gpuBusy)):
				t.Errorf("GPU busy %v, want %g ms", p.GPUBusyMS, tc.gpuBusy)
			}
			if !slices.EqualFunc(p.Top, tc.wantTop, func(a, b ProfileEntry) bool {
				return a.Name == b.Name && a.Device == b.Device && a.Calls == b.Calls && near(a.MS, b.MS)
			}) {
				t.Errorf("top\n%+v\nwant\n%+v", p.Top, tc.wantTop)
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestSummarizeKeepsTheBusiest(t *testing.T) {
	var evs []torch.ProfileEvent
	for i := range 3 * ProfileTop {
		name := strings.Repeat("k", maxProfileName+10) + string(rune('A'+i))
		evs = append(evs, ev(name, true, 1, time.Duration(100*i), time.Duration(i+1)))
	}
	p := summarize(evs, 1)
	if len(p.Top) != ProfileTop {
		t.Fatalf("%d entries, want %d", len(p.Top), ProfileTop)
	}
	for i, e := range p.Top {
		if want := float64(3*ProfileTop-i) / 1000; !near(e.MS, want) {
			t.Errorf("entry %d: %g ms, want %g", i, e.MS, want)
		}
		if len(e.Name) > maxProfileName+len("…") {
			t.Errorf("entry %d: name of %d bytes", i, len(e.Name))
		}
	}
}

// TestRunProfile profiles a row of the tiny model: the ops its forward is
// made of are in the profile, with their calls per run.
func TestRunProfile(t *testing.T) {
	dev := torchtest.Device(t)
	if !torch.ProfilerCompiled() {
		t.Skip("the shim has no profiler: its headers did not compile against this libtorch")
	}
	onTiny(t, dev, func(m *model.CLIP) error {
		o := DefaultOptions()
		o.Warmup, o.Repeat, o.Profile = 1, 1, 2
		o.TraceDir = filepath.Join(t.TempDir(), "traces")
		o.Base.Config = "tiny"
		recs, err := Run(m, ScoreWork(), o)
		if err != nil {
			return err
		}
		p := recs[0].Profile
		if p == nil {
			t.Fatal("no profile")
		}
		// Rounding to whole microseconds may add a few to the host's.
		if p.Runs != 2 || !(p.WallMS > 0) || !(p.HostMS > 0) || p.HostMS+p.WaitMS > p.WallMS+0.05 {
			t.Errorf("profile %+v", p)
		}
		if (p.GPUBusyMS != nil) != dev.IsCUDA() {
			t.Errorf("GPU busy %v on %s", p.GPUBusyMS, dev)
		}
		if len(p.Top) == 0 || p.Top[0].Device != "host" {
			t.Fatalf("top %+v", p.Top)
		}
		for _, e := range p.Top {
			// Whole calls per run of the row's ops: both runs made the same
			// (CUDA's calls and CUPTI's records may differ between runs).
			if !strings.HasPrefix(e.Name, "aten::") {
				continue
			}
			if e.Calls != float64(int(e.Calls)) || e.Calls < 1 {
				t.Errorf("%s on %s: %g calls a run", e.Name, e.Device, e.Calls)
			}
		}
		trace := filepath.Join(o.TraceDir, "score.trace.json")
		if p.Trace != trace {
			t.Errorf("trace %q, want %q", p.Trace, trace)
		}
		data, err := os.ReadFile(trace)
		if err != nil {
			return err
		}
		var tr struct {
			TraceEvents []traceEvent `json:"traceEvents"`
		}
		if err := json.Unmarshal(data, &tr); err != nil {
			t.Fatalf("%s: %v", trace, err)
		}
		ops := 0
		for _, e := range tr.TraceEvents {
			if e.Ph == "X" && strings.HasPrefix(e.Name, "aten::") {
				ops++
			}
		}
		if ops == 0 {
			t.Errorf("%s: no op among %d events", trace, len(tr.TraceEvents))
		}
		var b bytes.Buffer
		if err := WriteProfiles(&b, recs); err != nil {
			return err
		}
		out := b.String()
		for _, want := range []string{"profile of score", "2 runs under libtorch's profiler", "in libtorch", "outside libtorch", "trace: " + trace, p.Top[0].Name} {
			if !strings.Contains(out, want) {
				t.Errorf("WriteProfiles lacks %q:\n%s", want, out)
			}
		}
		return nil
	})
}

func TestWriteProfiles(t *testing.T) {
	busy := 4.0
	recs := []Record{
		{Work: "score", Impl: "lavascope", Title: "scoring one pair (forward only)"},
		{Work: "explain-last", Impl: "lavascope+tf32+graphs", Title: "relevance, one pair, last layer only", Profile: &Profile{
			Runs: 1, WallMS: 8, HostMS: 0.5, WaitMS: 7, GPUBusyMS: &busy, Invalid: 2,
			Top: []ProfileEntry{
				{Name: "cudaGraphLaunch", Device: "host", Calls: 1, MS: 0.4},
				{Name: "ampere_sgemm_" + strings.Repeat("x", 100), Device: "gpu", Calls: 48, MS: 2.5},
			},
		}},
	}
	var b bytes.Buffer
	if err := WriteProfiles(&b, recs); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"profile of explain-last (lavascope+tf32+graphs, relevance, one pair, last layer only): 1 run under libtorch's profiler, 8.00 ms a run with it on",
		"host: 0.50 ms a run in libtorch, 7.00 ms waiting for the GPU, 0.50 ms outside libtorch (the binding, Go, the profiler); GPU busy 4.00 ms a run (50% of the run)",
		"2 events left out",
		"0.400  ", "cudaGraphLaunch",
		"2.500  ", "48  ", "ampere_sgemm_xxx",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "profile of score") || strings.Contains(out, strings.Repeat("x", 90)) {
		t.Errorf("a record without a profile, or a name not cut short:\n%s", out)
	}
}

// TestWriteTrace writes a trace as profileRuns does, from dropInvalid's
// events: the broken one neither appears nor moves the clock's origin.
func TestWriteTrace(t *testing.T) {
	evs, invalid := dropInvalid([]torch.ProfileEvent{
		ev("aten::mm", false, 3, 1000, 40),
		ev("gemm", true, 7, 1010, 20),
		ev("broken", true, 7, 1, -5),
		ev("aten::relu", false, 3, 1050, 0),
	})
	if invalid != 1 {
		t.Errorf("%d invalid events, want 1", invalid)
	}
	var b bytes.Buffer
	if err := writeTrace(&b, evs); err != nil {
		t.Fatal(err)
	}
	var got struct {
		TraceEvents []traceEvent `json:"traceEvents"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	want := []traceEvent{
		{Name: "process_name", Ph: "M", Pid: 0, Args: map[string]string{"name": "host"}},
		{Name: "process_name", Ph: "M", Pid: 1, Args: map[string]string{"name": "GPU"}},
		{Name: "aten::mm", Ph: "X", Pid: 0, Tid: 3, Ts: 0, Dur: 40},
		{Name: "gemm", Ph: "X", Pid: 1, Tid: 7, Ts: 10, Dur: 20},
		{Name: "aten::relu", Ph: "X", Pid: 0, Tid: 3, Ts: 50, Dur: 0},
	}
	if fmt.Sprint(got.TraceEvents) != fmt.Sprint(want) {
		t.Errorf("events\n%+v\nwant\n%+v", got.TraceEvents, want)
	}
	if !strings.Contains(b.String(), `"dur":0`) {
		t.Errorf("an event of no duration lacks its dur: %s", b.String())
	}
}
