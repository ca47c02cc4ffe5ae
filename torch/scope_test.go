package torch_test

import (
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

func TestScopeFreesEverything(t *testing.T) {
	dev := torchtest.Device(t)
	start := torch.LiveTensors()
	s := torch.NewScope()
	e := env{s: s, dev: dev}
	x := e.leaf(t, []float64{1, 2, 3, 4}, 2, 2)
	y := x.Matmul(x).Softmax(-1).Sum([]int64{0}, false).Reshape(1, 2).Expand(3, 2)
	y.Select(0, 0).SumAll().Backward(nil)
	_ = x.Grad()
	x.Reshape(3, 3) // a failure allocates nothing either
	if got := torch.LiveTensors(); got <= start {
		t.Fatalf("live tensors %d, not above the start %d", got, start)
	}
	if s.Len() == 0 {
		t.Fatal("scope owns nothing")
	}
	s.Close()
	if got := torch.LiveTensors(); got != start {
		t.Errorf("live tensors %d after Close, want %d", got, start)
	}
	if s.Len() != 0 {
		t.Errorf("closed scope still owns %d", s.Len())
	}
}

func TestFreeAndMove(t *testing.T) {
	torchtest.Require(t)
	start := torch.LiveTensors()
	outer := torch.NewScope()
	inner := torch.NewScope()
	x := inner.FromFloat32([]float32{1, 2}, 2)
	var keep *torch.Tensor
	for i := range 100 {
		y := x.AddScalar(float64(i))
		if i == 50 {
			keep = y
			continue
		}
		y.Free()
	}
	if n := inner.Len(); n != 2 {
		t.Errorf("inner owns %d after freeing 99 of 100, want 2", n)
	}
	if err := keep.MoveTo(outer); err != nil {
		t.Fatal(err)
	}
	if err := inner.Close(); err != nil {
		t.Fatal(err)
	}
	v, err := keep.Float32s()
	if err != nil || v[0] != 51 {
		t.Errorf("moved tensor after the inner scope closed: %v, %v", v, err)
	}
	if keep.Scope() != outer || outer.Len() != 1 {
		t.Errorf("moved tensor: scope %p, outer owns %d", keep.Scope(), outer.Len())
	}
	keep.Neg() // its result belongs to outer now
	outer.Close()
	if got := torch.LiveTensors(); got != start {
		t.Errorf("live tensors %d, want %d", got, start)
	}
}
