package torch_test

import (
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// freePort is a TCP port of the loopback that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func lookupIn(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDistOptionsFromEnv(t *testing.T) {
	full := map[string]string{"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
	o, ok, err := torch.DistOptionsFromEnv(lookupIn(full))
	if err != nil || !ok || o.Rank != 1 || o.WorldSize != 2 || o.LocalRank != 1 || o.MasterAddr != "127.0.0.1" || o.MasterPort != 29500 {
		t.Fatalf("got %+v, %v, %v", o, ok, err)
	}
	if o.AgentStore {
		t.Errorf("AgentStore without %s", torch.EnvAgentStore)
	}
	for v, want := range map[string]bool{"True": true, "False": false, "true": false} {
		m := maps.Clone(full)
		m[torch.EnvAgentStore] = v
		if o, _, err := torch.DistOptionsFromEnv(lookupIn(m)); err != nil || o.AgentStore != want {
			t.Errorf("%s=%s: AgentStore %v, %v; want %v", torch.EnvAgentStore, v, o.AgentStore, err, want)
		}
	}
	if _, ok, err := torch.DistOptionsFromEnv(lookupIn(nil)); ok || err != nil {
		t.Fatalf("no variables: ok %v, err %v; want a single process", ok, err)
	}
	for _, c := range []struct{ key, val, want string }{
		{"RANK", "2", "RANK=2 is not below WORLD_SIZE=2"},
		{"RANK", "-1", `RANK="-1"`},
		{"WORLD_SIZE", "two", `WORLD_SIZE="two"`},
		{"WORLD_SIZE", "0", `WORLD_SIZE="0"`},
		{"LOCAL_RANK", " 1", `LOCAL_RANK=" 1"`},
		{"MASTER_PORT", "70000", `MASTER_PORT="70000"`},
		{"MASTER_ADDR", "a b", `MASTER_ADDR="a b"`},
		{"MASTER_ADDR", "\x1b[2J", `MASTER_ADDR="\x1b[2J"`},
		{"MASTER_PORT", "", "MASTER_PORT is not set"},
	} {
		m := maps.Clone(full)
		if c.val == "" {
			delete(m, c.key)
		} else {
			m[c.key] = c.val
		}
		_, ok, err := torch.DistOptionsFromEnv(lookupIn(m))
		if !ok || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%q: ok %v, err %v; want an error with %q", c.key, c.val, ok, err, c.want)
		}
	}
}

func FuzzDistOptionsFromEnv(f *testing.F) {
	f.Add("0", "1", "0", "localhost", "29500")
	f.Add("3", "2", "", "10.0.0.1", "0")
	f.Fuzz(func(t *testing.T, rank, world, local, addr, port string) {
		m := map[string]string{"RANK": rank, "WORLD_SIZE": world, "MASTER_ADDR": addr, "MASTER_PORT": port}
		if local != "" {
			m["LOCAL_RANK"] = local
		}
		o, ok, err := torch.DistOptionsFromEnv(lookupIn(m))
		if !ok {
			t.Fatal("variables set but ok is false")
		}
		if err == nil && (o.Rank < 0 || o.Rank >= o.WorldSize || o.MasterPort < 1 || o.MasterPort > 65535 || o.MasterAddr == "") {
			t.Fatalf("accepted %+v", o)
		}
	})
}

// TestDistOneRank runs every collective in a group of one, in this process.
func TestDistOneRank(t *testing.T) {
	torchtest.RequireGloo(t)
	g, err := torch.NewProcessGroup(torch.DistOptions{
		WorldSize: 1, MasterAddr: "127.0.0.1", MasterPort: freePort(t), Backend: torch.Gloo, Timeout: 30 * time.Second,
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	s := torchtest.Scope(t)
	x := s.FromFloat32([]float32{1, 2, 3}, 3)
	if err := g.AllReduce([]*torch.Tensor{x}, true, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := x.Float32s(); !slices.Equal(got, []float32{1, 2, 3}) {
		t.Errorf("all-reduce of one rank: %v", got)
	}
	if err := g.Broadcast([]*torch.Tensor{x}, 1); err == nil || !strings.Contains(err.Error(), "root 1") {
		t.Errorf("broadcast from rank 1 of 1: %v, want an error naming the root", err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Barrier(); err == nil {
		t.Error("barrier on a closed group did not fail")
	}
}

func TestDistBadOptions(t *testing.T) {
	torchtest.Require(t)
	for _, o := range []torch.DistOptions{
		{WorldSize: 2, Rank: 2, MasterAddr: "127.0.0.1", MasterPort: 1, Backend: torch.Gloo},
		{WorldSize: 1, MasterAddr: "127.0.0.1", MasterPort: 1, Backend: "mpi"},
		{WorldSize: 1, MasterAddr: "-x", MasterPort: 1, Backend: torch.Gloo},
		{WorldSize: 1, MasterAddr: "127.0.0.1", MasterPort: 0, Backend: torch.Gloo},
	} {
		if g, err := torch.NewProcessGroup(o, ""); err == nil {
			g.Close()
			t.Errorf("%+v: no error", o)
		}
	}
}

// TestDistTwoProcesses starts this test binary twice as ranks 0 and 1 of a
// Gloo group over the loopback, once per child test; each rank checks the
// results (of the collectives: TestDistChild; of the gradient reducer:
// TestGradReducerChild) and fails on a wrong one.
func TestDistTwoProcesses(t *testing.T) {
	if torchtest.IsRank() {
		t.Skip("a rank does not start ranks")
	}
	torchtest.RequireGloo(t)
	for _, child := range []string{"TestDistChild", "TestGradReducerChild"} {
		t.Run(child, func(t *testing.T) { torchtest.RunRanks(t, 2, child, 90*time.Second) })
	}
}

// TestDistChild is one rank of TestDistTwoProcesses.
func TestDistChild(t *testing.T) {
	g := torchtest.JoinRanks(t)
	s := torchtest.Scope(t)
	r := float32(g.Rank())

	// Many tensors in small buckets: several collectives, each flattened.
	var ts []*torch.Tensor
	for i := range 5 {
		ts = append(ts, s.FromFloat32([]float32{r + 1, float32(i) * (r + 1)}, 2))
	}
	ts = append(ts, s.FromFloat64([]float64{float64(r)}, 1))
	if err := g.AllReduce(ts, false, 12); err != nil {
		t.Fatal(err)
	}
	for i, x := range ts[:5] {
		if got, _ := x.Float32s(); !slices.Equal(got, []float32{3, 3 * float32(i)}) {
			t.Errorf("sum of tensor %d: %v", i, got)
		}
	}
	if got, _ := ts[5].Float64s(); !slices.Equal(got, []float64{1}) {
		t.Errorf("sum of the float64 tensor: %v", got)
	}
	a := s.FromFloat32([]float32{2 * r, 4}, 2, 1)
	if err := g.AllReduce([]*torch.Tensor{a}, true, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Float32s(); !slices.Equal(got, []float32{1, 4}) {
		t.Errorf("mean: %v", got)
	}

	b := s.FromFloat32([]float32{r, r, r, r}, 2, 2).Transpose(0, 1)
	if err := g.Broadcast([]*torch.Tensor{b}, 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Contiguous().Float32s(); !slices.Equal(got, []float32{1, 1, 1, 1}) {
		t.Errorf("broadcast from rank 1 into a transposed tensor: %v", got)
	}

	// The gathered batch carries a gradient into this rank's rows only.
	e := s.FromFloat32([]float32{r + 1, 10 * (r + 1)}, 1, 2)
	if err := e.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	all, err := g.AllGather(e, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := all.Float32s(); !slices.Equal(got, []float32{1, 10, 2, 20}) {
		t.Errorf("all-gather: %v", got)
	}
	w := s.FromFloat32([]float32{1, 2, 3, 4}, 2, 2)
	if err := all.Mul(w).SumAll().Backward(nil); err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 2}
	if g.Rank() == 1 {
		want = []float32{3, 4}
	}
	if got, _ := e.Grad().Float32s(); !slices.Equal(got, want) {
		t.Errorf("gradient of this rank's rows: %v, want %v", got, want)
	}
	// Parts of different lengths: rank 0 gives one row, rank 1 two.
	rows := []float32{5}
	if g.Rank() == 1 {
		rows = []float32{6, 7}
	}
	ragged, err := g.AllGather(s.FromFloat32(rows, int64(len(rows)), 1), false)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := ragged.Float32s(); !slices.Equal(got, []float32{5, 6, 7}) || ragged.Size(0) != 3 {
		t.Errorf("all-gather of 1 and 2 rows: %v", got)
	}
	if err := g.Barrier(); err != nil {
		t.Fatal(err)
	}
}

// TestGradReducerChild is one rank of TestDistTwoProcesses: buckets
// smaller than a parameter, a parameter one rank leaves unused, one both
// do, and a gradient present before the step.
func TestGradReducerChild(t *testing.T) {
	g := torchtest.JoinRanks(t)
	s := torchtest.Scope(t)
	r := float32(g.Rank())
	a := s.FromFloat32([]float32{1, 2}, 2)
	b := s.FromFloat32([]float32{3, 4, 5}, 3)
	c := s.FromFloat32([]float32{6}, 1)
	ps := []*torch.Tensor{a, b, c}
	for _, p := range ps {
		if err := p.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
	}
	one, err := g.NewGradReducer(ps, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if one.Buckets() != 1 {
		t.Errorf("25 MiB buckets over 6 floats: %d buckets", one.Buckets())
	}
	// Its hooks stay, unarmed: they must leave the steps below alone.
	defer one.Close()
	red, err := g.NewGradReducer(ps, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	defer red.Close()
	if red.Buckets() != 3 || red.BucketOf(2) != 0 || red.BucketOf(0) != 2 {
		t.Fatalf("4-byte buckets: %d buckets, c in %d, a in %d; want 3, c first, a last", red.Buckets(), red.BucketOf(2), red.BucketOf(0))
	}
	opt, err := torch.NewAdamW(ps, torch.DefaultAdamW())
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	grad := func(name string, p *torch.Tensor, want []float32) {
		t.Helper()
		got, err := p.Grad().Float32s()
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("gradient of %s: %v (%v), want %v", name, got, err, want)
		}
	}
	step := func(useC bool) int {
		t.Helper()
		if err := red.Prepare(); err != nil {
			t.Fatal(err)
		}
		l := a.MulScalar(float64(r + 1)).SumAll().Add(b.Mul(b).SumAll())
		if useC {
			l = l.Add(c.MulScalar(3).SumAll())
		}
		if err := l.Backward(nil); err != nil {
			t.Fatal(err)
		}
		early, err := red.Finish()
		if err != nil {
			t.Fatal(err)
		}
		return early
	}

	// Rank 1 alone uses c: both get its gradient. Rank 0's backward cannot
	// send c's bucket, the first, so it sends none of them early.
	early := step(g.Rank() == 1)
	grad("a", a, []float32{3, 3})
	grad("b", b, []float32{12, 16, 20})
	grad("c", c, []float32{3})
	if want := 3 * g.Rank(); early != want {
		t.Errorf("rank %d launched %d buckets during backward, want %d", g.Rank(), early, want)
	}

	// A gradient already there is summed with this step's, as DDP sums
	// .grad (the sum of step 1 on both ranks, then each rank's own).
	step(false)
	grad("a", a, []float32{9, 9})
	grad("c", c, []float32{6})

	// No rank uses c: it keeps no gradient, as in one process.
	if err := opt.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	step(false)
	grad("a", a, []float32{3, 3})
	if err := c.Grad().Err(); err == nil {
		t.Error("c, used by no rank, has a gradient")
	}

	if _, err := red.Finish(); err == nil || !strings.Contains(err.Error(), "without prepare") {
		t.Errorf("finish twice: %v", err)
	}
}
