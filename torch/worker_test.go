package torch_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

func TestWorkerConcurrentCallers(t *testing.T) {
	dev := torchtest.Device(t)
	start := torch.LiveTensors()
	w := torch.NewWorker()
	defer w.Close()
	var mu sync.Mutex
	tids := map[int]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, 8*25)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				errs <- w.Do(func() error {
					mu.Lock()
					tids[syscall.Gettid()] = true
					mu.Unlock()
					s := torch.NewScope()
					defer s.Close()
					k := float64(g*100 + i)
					x := s.FromFloat64([]float64{k, 1}, 1, 2).ToDevice(dev)
					v, err := x.Matmul(x.T()).Item()
					if err != nil {
						return err
					}
					if v != k*k+1 {
						return fmt.Errorf("caller %d job %d: got %v, want %v", g, i, v, k*k+1)
					}
					return nil
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if len(tids) != 1 {
		t.Errorf("jobs ran on %d OS threads, want 1", len(tids))
	}
	if got := torch.LiveTensors(); got != start {
		t.Errorf("live tensors %d, want %d", got, start)
	}
}

func TestWorkerPanicAndClose(t *testing.T) {
	torchtest.Require(t)
	w := torch.NewWorker()
	err := w.Do(func() error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "panic: boom") {
		t.Errorf("panic: %v", err)
	}
	want := errors.New("job error")
	if err := w.Do(func() error { return want }); err != want {
		t.Errorf("error of a job: %v", err)
	}
	w.Close()
	w.Close()
	if err := w.Do(func() error { return nil }); !errors.Is(err, torch.ErrWorkerClosed) {
		t.Errorf("Do after Close: %v", err)
	}
}
