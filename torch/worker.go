package torch

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// ErrWorkerClosed is returned by Do after Close.
var ErrWorkerClosed = errors.New("torch: worker is closed")

// Worker runs functions one at a time on one goroutine locked to its OS
// thread. libtorch keeps grad mode and the current CUDA stream per thread, so
// every torch call of one model goes through the same Worker; the CLI and the
// TUI share this way of calling torch.
type Worker struct {
	jobs chan job
	mu   sync.RWMutex
	done bool
	wg   sync.WaitGroup
}

type job struct {
	f   func() error
	err chan error
}

// NewWorker starts a worker.
func NewWorker() *Worker {
	w := &Worker{jobs: make(chan job)}
	w.wg.Add(1)
	go w.loop()
	return w
}

func (w *Worker) loop() {
	defer w.wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for j := range w.jobs {
		j.err <- run(j.f)
	}
}

// run calls f, turning a panic into an error so that one bad job does not
// take the worker (and the program's model) down.
func run(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("torch worker: panic: %v\n%s", r, debug.Stack())
		}
	}()
	return f()
}

// Do runs f on the worker's thread and returns its error. It is safe to call
// from many goroutines; calls run one after another. Do must not be called
// from inside f (it would wait for itself).
func (w *Worker) Do(f func() error) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.done {
		return ErrWorkerClosed
	}
	j := job{f: f, err: make(chan error, 1)}
	w.jobs <- j
	return <-j.err
}

// Close waits for the running and queued calls, then stops the worker.
func (w *Worker) Close() {
	w.mu.Lock()
	if !w.done {
		w.done = true
		close(w.jobs)
	}
	w.mu.Unlock()
	w.wg.Wait()
}
