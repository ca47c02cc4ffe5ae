package torch

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

var (
	opDistBackends  = newOp("dist_backends")
	opDistNew       = newOp("dist_new")
	opDistFree      = newOp("dist_free")
	opDistAllReduce = newOp("dist_all_reduce")
	opDistBroadcast = newOp("dist_broadcast")
	opDistAllGather = newOp("dist_all_gather")
	opDistBarrier   = newOp("dist_barrier")

	opDistReducerNew     = newOp("dist_reducer_new")
	opDistReducerFree    = newOp("dist_reducer_free")
	opDistReducerPrepare = newOp("dist_reducer_prepare")
	opDistReducerFinish  = newOp("dist_reducer_finish")
)

// Backend is a c10d communication backend.
type Backend string

const (
	// Gloo runs on the CPU (and is what a CPU-only libtorch has).
	Gloo Backend = "gloo"
	// NCCL runs between CUDA GPUs.
	NCCL Backend = "nccl"
)

func (b Backend) code() (int64, error) {
	switch b {
	case Gloo:
		return 0, nil
	case NCCL:
		return 1, nil
	}
	return 0, fmt.Errorf("unknown backend %q (want gloo or nccl)", string(b))
}

// DistBackends reports which c10d backends the loaded shim has: Gloo where
// the libtorch's c10d and Gloo headers compiled, NCCL where it also has
// CUDA and NCCL.
func DistBackends() (gloo, nccl bool) {
	c := getCall()
	defer putCall(c)
	if _, err := c.exec(opDistBackends); err != nil || c.f.niout < 2 {
		return false, false
	}
	return c.iout[0] != 0, c.iout[1] != 0
}

// DefaultBucketBytes is how many bytes of tensors AllReduce flattens into
// one collective: 25 MiB, what PyTorch's DistributedDataParallel uses.
const DefaultBucketBytes = 25 << 20

// DistOptions say how a process joins a process group: torchrun's
// variables, or the same given as flags.
type DistOptions struct {
	Rank, WorldSize int
	// LocalRank is the rank on this machine: the GPU a rank uses.
	LocalRank int
	// MasterAddr and MasterPort are rank 0's TCP store, which the other
	// ranks connect to.
	MasterAddr string
	MasterPort int
	Backend    Backend
	// Timeout bounds the rendezvous and every collective (0: 5 minutes).
	Timeout time.Duration
	// AgentStore says that torchrun's agent already serves the TCP store
	// on MasterPort (TORCHELASTIC_USE_AGENT_STORE=True): rank 0 joins it as
	// a client instead of serving it.
	AgentStore bool
}

// The variables torchrun sets for each process.
const (
	EnvRank       = "RANK"
	EnvWorldSize  = "WORLD_SIZE"
	EnvLocalRank  = "LOCAL_RANK"
	EnvMasterAddr = "MASTER_ADDR"
	EnvMasterPort = "MASTER_PORT"
	// EnvAgentStore is "True" when torchrun's agent serves the store.
	EnvAgentStore = "TORCHELASTIC_USE_AGENT_STORE"
)

// DistOptionsFromEnv reads torchrun's variables through lookup (os.LookupEnv).
// ok is false when none of them is set: a single process. Set at all, they
// must all be well-formed (LOCAL_RANK may be missing: then it is RANK); an
// error names the variable and its value.
func DistOptionsFromEnv(lookup func(string) (string, bool)) (o DistOptions, ok bool, err error) {
	names := []string{EnvRank, EnvWorldSize, EnvLocalRank, EnvMasterAddr, EnvMasterPort}
	any := false
	for _, n := range names {
		if _, set := lookup(n); set {
			any = true
		}
	}
	if !any {
		return DistOptions{}, false, nil
	}
	num := func(name string, min, max int) (int, error) {
		v, set := lookup(name)
		if !set {
			return 0, fmt.Errorf("%s is not set (torchrun sets %s together with the others)", name, strings.Join(names, ", "))
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			return 0, fmt.Errorf("%s=%s: want an integer in %d..%d", name, strconv.Quote(v), min, max)
		}
		return n, nil
	}
	var errs []error
	add := func(n int, e error) int {
		if e != nil {
			errs = append(errs, e)
		}
		return n
	}
	o.WorldSize = add(num(EnvWorldSize, 1, 1<<16))
	o.Rank = add(num(EnvRank, 0, 1<<16))
	if o.WorldSize > 0 && o.Rank >= o.WorldSize && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s=%d is not below %s=%d", EnvRank, o.Rank, EnvWorldSize, o.WorldSize))
	}
	if _, set := lookup(EnvLocalRank); set {
		o.LocalRank = add(num(EnvLocalRank, 0, 1<<16))
	} else {
		o.LocalRank = o.Rank
	}
	o.MasterPort = add(num(EnvMasterPort, 1, 65535))
	addr, set := lookup(EnvMasterAddr)
	switch {
	case !set:
		errs = append(errs, fmt.Errorf("%s is not set (rank 0's host name or address)", EnvMasterAddr))
	case checkHost(addr) != nil:
		errs = append(errs, fmt.Errorf("%s=%s: %w", EnvMasterAddr, strconv.Quote(addr), checkHost(addr)))
	}
	o.MasterAddr = addr
	// torch.distributed compares the value with str(True) alone.
	if v, _ := lookup(EnvAgentStore); v == "True" {
		o.AgentStore = true
	}
	if err := errors.Join(errs...); err != nil {
		return DistOptions{}, true, err
	}
	return o, true, nil
}

// checkHost accepts an IP address or a DNS host name.
func checkHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	if h == "" || len(h) > 253 {
		return errors.New("want an IP address or a host name")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("want an IP address or a host name")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return errors.New("want an IP address or a host name")
			}
		}
	}
	return nil
}

// isLoopback reports whether h names this machine's loopback.
func isLoopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// ProcessGroup is this process's membership of a c10d process group. Its
// collectives block until every rank has called them, in the same order:
// all ranks must make the same calls.
type ProcessGroup struct {
	h       uintptr
	o       DistOptions
	backend Backend
}

// NewProcessGroup joins the group: rank 0 serves the TCP store at
// MasterAddr:MasterPort, the others connect to it, and it returns when all
// WorldSize ranks have arrived or Timeout passed. A group on the loopback
// binds Gloo to the loopback too; otherwise Gloo takes the interface named
// by GLOO_SOCKET_IFNAME, as in PyTorch, or this host name's address.
func NewProcessGroup(o DistOptions, glooIface string) (*ProcessGroup, error) {
	code, err := o.Backend.code()
	if err != nil {
		return nil, &OpError{Op: "dist_new", Err: err}
	}
	if err := checkHost(o.MasterAddr); err != nil {
		return nil, &OpError{Op: "dist_new", Err: fmt.Errorf("master address %q: %w", o.MasterAddr, err)}
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	dev := ""
	switch {
	case isLoopback(o.MasterAddr):
		dev = "host:127.0.0.1"
	case glooIface != "":
		dev = "iface:" + glooIface
	}
	c := getCall()
	defer putCall(c)
	c.ints = append(c.ints, int64(o.Rank), int64(o.WorldSize), int64(o.MasterPort), code, o.Timeout.Milliseconds(), b2i(o.AgentStore))
	for _, s := range []string{o.MasterAddr, dev} {
		c.ints = append(c.ints, int64(len(s)))
		for i := 0; i < len(s); i++ {
			c.ints = append(c.ints, int64(s[i]))
		}
	}
	c.wantOut(1)
	if _, err := c.exec(opDistNew); err != nil {
		return nil, &OpError{Op: "dist_new", Err: fmt.Errorf("rank %d of %d, %s at %s:%d: %w",
			o.Rank, o.WorldSize, o.Backend, o.MasterAddr, o.MasterPort, err)}
	}
	return &ProcessGroup{h: c.out[0], o: o, backend: o.Backend}, nil
}

// Rank is this process's rank, 0..WorldSize-1.
func (g *ProcessGroup) Rank() int { return g.o.Rank }

// WorldSize is how many processes the group has.
func (g *ProcessGroup) WorldSize() int { return g.o.WorldSize }

// LocalRank is this process's rank on its machine.
func (g *ProcessGroup) LocalRank() int { return g.o.LocalRank }

// Backend is the group's backend.
func (g *ProcessGroup) Backend() Backend { return g.backend }

func (g *ProcessGroup) call(o *opcode, ts []*Tensor, ints ...int64) (*call, error) {
	if g == nil || g.h == 0 {
		return nil, &OpError{Op: o.name, Err: errors.New("process group is closed")}
	}
	c := getCall()
	c.in = append(c.in, g.h)
	for i, t := range ts {
		if err := t.check(o.name); err != nil {
			putCall(c)
			return nil, fmt.Errorf("tensor %d: %w", i, err)
		}
		c.in = append(c.in, t.h.ptr)
	}
	c.ints = append(c.ints, ints...)
	return c, nil
}

func (g *ProcessGroup) run(o *opcode, ts []*Tensor, ints ...int64) error {
	c, err := g.call(o, ts, ints...)
	if err != nil {
		return err
	}
	defer putCall(c)
	if _, err := c.exec(o); err != nil {
		return &OpError{Op: o.name, Err: fmt.Errorf("rank %d: %w", g.o.Rank, err)}
	}
	return nil
}

// AllReduce replaces each tensor with its sum over the ranks (with avg,
// the mean), in place. Tensors are sent in buckets of at most bucketBytes
// (DefaultBucketBytes when 0).
func (g *ProcessGroup) AllReduce(ts []*Tensor, avg bool, bucketBytes int64) error {
	if bucketBytes <= 0 {
		bucketBytes = DefaultBucketBytes
	}
	return g.run(opDistAllReduce, ts, b2i(avg), bucketBytes)
}

// Broadcast replaces each tensor with root's, in place.
func (g *ProcessGroup) Broadcast(ts []*Tensor, root int) error {
	return g.run(opDistBroadcast, ts, int64(root))
}

// AllGather concatenates every rank's t along dim 0, rank by rank, into a
// tensor of t's scope; the ranks' tensors may differ in dim 0 only. With keepGrad, this rank's
// part is t itself, so a gradient flows into t (the other ranks' parts are
// constants): a loss over the whole batch then gives each rank the gradient
// of its own items.
func (g *ProcessGroup) AllGather(t *Tensor, keepGrad bool) (*Tensor, error) {
	if err := t.check("dist_all_gather"); err != nil {
		return nil, err
	}
	if t.scope == nil || t.scope.sealed || t.scope.closed {
		return nil, &OpError{Op: "dist_all_gather", Err: ErrSealed}
	}
	c, err := g.call(opDistAllGather, []*Tensor{t}, b2i(keepGrad))
	if err != nil {
		return nil, err
	}
	r := c.result(opDistAllGather, t.scope)
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("rank %d: %w", g.o.Rank, err)
	}
	return r, nil
}

// Barrier returns when every rank has called it.
func (g *ProcessGroup) Barrier() error { return g.run(opDistBarrier, nil) }

// Close leaves the group and frees it.
func (g *ProcessGroup) Close() error {
	if g == nil || g.h == 0 {
		return nil
	}
	c := getCall()
	defer putCall(c)
	c.in = append(c.in, g.h)
	g.h = 0
	if _, err := c.exec(opDistFree); err != nil {
		return &OpError{Op: "dist_free", Err: err}
	}
	return nil
}

// GradReducer sums the gradients of a fixed list of parameters over a
// group's ranks while the backward pass runs, as PyTorch's
// DistributedDataParallel does: the parameters are grouped into buckets
// from the last back (backward reaches the last layers first), a hook on
// each parameter copies its gradient into its bucket, and a complete
// bucket's all-reduce starts at once, overlapping the rest of the backward
// pass. A parameter that gets no gradient in a step is sent as zeros, so
// no rank waits for it; one that no rank gave a gradient keeps none.
//
// A step is Prepare, one backward pass, Finish. Between Prepare and Finish
// the parameters' gradients are those of this rank alone; after Finish
// they are the sums (means with avg) over the ranks. Every rank must make
// the same reducer over the same parameters with the same bucket size.
type GradReducer struct {
	h       uintptr
	g       *ProcessGroup
	buckets []int
	n       int
}

// NewGradReducer hooks the parameters ps, leaves that require grad, for
// buckets of at most bucketBytes (DefaultBucketBytes when 0; a larger
// parameter is a bucket of its own). With avg the result is the mean over
// the ranks instead of the sum.
func (g *ProcessGroup) NewGradReducer(ps []*Tensor, bucketBytes int64, avg bool) (*GradReducer, error) {
	if bucketBytes <= 0 {
		bucketBytes = DefaultBucketBytes
	}
	c, err := g.call(opDistReducerNew, ps, bucketBytes, b2i(avg))
	if err != nil {
		return nil, err
	}
	defer putCall(c)
	c.wantOut(1)
	c.wantIOut(1 + len(ps))
	if _, err := c.exec(opDistReducerNew); err != nil {
		return nil, &OpError{Op: "dist_reducer_new", Err: fmt.Errorf("rank %d: %w", g.o.Rank, err)}
	}
	r := &GradReducer{h: c.out[0], g: g, n: int(c.iout[0])}
	for _, b := range c.iout[1 : 1+len(ps)] {
		r.buckets = append(r.buckets, int(b))
	}
	return r, nil
}

// Buckets is the number of buckets.
func (r *GradReducer) Buckets() int { return r.n }

// BucketOf is the bucket of parameter i: bucket 0 is sent first.
func (r *GradReducer) BucketOf(i int) int { return r.buckets[i] }

func (r *GradReducer) run(o *opcode) (int, error) {
	if r == nil || r.h == 0 {
		return 0, &OpError{Op: o.name, Err: errors.New("gradient reducer is closed")}
	}
	c := getCall()
	defer putCall(c)
	c.in = append(c.in, r.h)
	c.wantIOut(1)
	if _, err := c.exec(o); err != nil {
		return 0, &OpError{Op: o.name, Err: fmt.Errorf("rank %d: %w", r.g.o.Rank, err)}
	}
	if c.f.niout < 1 {
		return 0, nil
	}
	return int(c.iout[0]), nil
}

// Prepare arms the hooks for the next backward pass. Out of a step (before
// Prepare, after Finish) they leave the gradients alone.
func (r *GradReducer) Prepare() error {
	_, err := r.run(opDistReducerPrepare)
	return err
}

// Finish sends the buckets the backward pass did not complete, waits for
// all of them and writes the results into the parameters' gradients. early
// is how many buckets the backward pass itself launched: those whose
// transfer overlapped it. Buckets go in order, so one waiting for a
// gradient holds back those after it.
func (r *GradReducer) Finish() (early int, err error) { return r.run(opDistReducerFinish) }

// Close removes the hooks and frees the buckets; it must come before the
// group's Close.
func (r *GradReducer) Close() error {
	if r == nil || r.h == 0 {
		return nil
	}
	_, err := r.run(opDistReducerFree)
	r.h = 0
	return err
}
