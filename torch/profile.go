package torch

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

var (
	opProfileCompiled = newOp("profile_compiled")
	opProfileBegin    = newOp("profile_begin")
	opProfileEnd      = newOp("profile_end")
)

// ProfileEvent is one op on the host, or one kernel or copy on a GPU, as
// libtorch's profiler recorded it.
type ProfileEvent struct {
	Name string
	// GPU is true for the card's work, false for the host's.
	GPU bool
	// Thread is the host thread that ran the op (for GPU events, what the
	// profiler puts there: a stream).
	Thread uint64
	// Start is on the profiler's clock; only differences between events
	// mean something. Duration is negative where that clock failed: CUPTI
	// can report a kernel that ends before it starts.
	Start, Duration time.Duration
}

// End is when the event finished.
func (e ProfileEvent) End() time.Duration { return e.Start + e.Duration }

// ProfilerCompiled reports whether the shim has libtorch's profiler (its
// headers compiled against the libtorch at hand).
func ProfilerCompiled() bool { return flag(opProfileCompiled) }

// StartProfile starts libtorch's profiler: the ATen ops this thread (and
// autograd's, for a backward it starts) runs from now on, and with gpu the
// kernels and copies of every GPU. The profiler follows its thread: call
// StartProfile, the work and StopProfile from the goroutine that runs torch
// calls (a Worker's), never from two at once.
func StartProfile(gpu bool) error {
	if err := callInts(opProfileBegin, []int64{b2i(gpu)}); err != nil {
		return fmt.Errorf("torch: starting the profiler: %w", err)
	}
	return nil
}

// StopProfile stops the profiler that StartProfile started and returns what
// it recorded.
func StopProfile() ([]ProfileEvent, error) {
	c := getCall()
	defer putCall(c)
	s, err := c.exec(opProfileEnd)
	if err != nil {
		return nil, fmt.Errorf("torch: stopping the profiler: %w", err)
	}
	return parseProfile(s)
}

// parseProfile reads the shim's event lines: device (0 host, 1 GPU),
// thread, start and duration in nanoseconds, name; tab-separated.
func parseProfile(s string) ([]ProfileEvent, error) {
	var evs []ProfileEvent
	for i, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, "\t", 5)
		if len(f) != 5 {
			return nil, fmt.Errorf("torch: profiler event %d: %d fields, want 5: %q", i+1, len(f), line)
		}
		dev, err1 := strconv.ParseInt(f[0], 10, 64)
		thread, err2 := strconv.ParseUint(f[1], 10, 64)
		start, err3 := strconv.ParseInt(f[2], 10, 64)
		dur, err4 := strconv.ParseInt(f[3], 10, 64)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return nil, fmt.Errorf("torch: profiler event %d: %w", i+1, err)
		}
		if dev != 0 && dev != 1 {
			return nil, fmt.Errorf("torch: profiler event %d: device %d, want 0 or 1", i+1, dev)
		}
		evs = append(evs, ProfileEvent{
			Name:     f[4],
			GPU:      dev == 1,
			Thread:   thread,
			Start:    time.Duration(start),
			Duration: time.Duration(dur),
		})
	}
	return evs, nil
}
