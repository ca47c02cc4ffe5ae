package torch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ebitengine/purego"
)

// LibName is the file name of the shim that scripts/build-torch.sh writes.
const LibName = "liblavascope_torch.so"

// abiVersion must equal LT_ABI_VERSION in csrc/shim.cpp.
const abiVersion = 2

// EnvLib names the environment variable that points at the shim.
const EnvLib = "LAVASCOPE_TORCH_LIB"

// fixCommand is what a user runs to get a working shim.
const fixCommand = "make torch"

// LoadError reports that no usable shim was found. Tried lists every place
// looked at with what went wrong there.
type LoadError struct {
	Tried []string
}

func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString("torch: cannot load the libtorch shim " + LibName + "; tried:")
	for _, t := range e.Tried {
		b.WriteString("\n  - " + t)
	}
	b.WriteString("\nbuild it with `" + fixCommand + "` (it needs a libtorch: `apt-get install libtorch-dev libopenblas0-pthread`, " +
		"a PyTorch for python3, or $LIBTORCH), or point " + EnvLib + " / the torch_lib setting at it")
	return b.String()
}

var (
	loadMu   sync.Mutex
	libPath  string
	libWhy   string
	loaded   atomic.Bool
	fnCall   uintptr
	fnFree   uintptr
	fnTFree  uintptr
	fnOpID   uintptr
	fnFromDt uintptr
	fnToDt   uintptr
)

// Candidate is one place Load looks for the shim, with why it looks there.
type Candidate struct {
	Path string
	Why  string
}

// sourceDir is the source tree the binary was built from, recorded by the
// Makefile (-X github.com/lavascope/lavascope/torch.sourceDir=$(CURDIR)).
var sourceDir string

// Load finds and loads the shim. With path empty it tries, in order,
// $LAVASCOPE_TORCH_LIB, the executable's folder, and the build/ folder of the
// source tree the binary was built from when the binary still lives in that
// tree. It never looks in the working directory or its parents: a dlopen
// runs the library's constructors before anything can be checked, so a
// build/ folder planted above where someone works would run code as them.
// Loading twice is a no-op; asking for another file once one is loaded is an
// error.
func Load(path string) error {
	loadMu.Lock()
	defer loadMu.Unlock()
	if loaded.Load() {
		if path != "" && !sameFile(path, libPath) {
			return fmt.Errorf("torch: %s requested but %s is already loaded", path, libPath)
		}
		return nil
	}
	var cands []Candidate
	if path != "" {
		cands = []Candidate{{path, "named by the torch_lib setting (--torch-lib, " + EnvLib + " or the config file)"}}
	} else {
		exe, err := os.Executable()
		if err == nil {
			exe, err = filepath.EvalSymlinks(exe)
		}
		if err != nil {
			exe = ""
		}
		cands = Candidates(os.Getenv(EnvLib), exe, sourceDir)
	}
	le := &LoadError{}
	for _, c := range cands {
		if _, err := os.Stat(c.Path); err != nil {
			le.Tried = append(le.Tried, c.Path+": not found ("+c.Why+")")
			continue
		}
		if err := open(c.Path); err != nil {
			le.Tried = append(le.Tried, c.Path+": "+err.Error()+" ("+c.Why+")")
			continue
		}
		libWhy = c.Why
		return nil
	}
	return le
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// Candidates lists where Load looks for the shim, given $LAVASCOPE_TORCH_LIB,
// the executable's path with symlinks resolved (empty when unknown) and the
// source tree recorded at build time (empty when none was). It reads nothing
// else: neither the working directory nor any folder a path of the user's
// does not name.
func Candidates(env, exe, srcDir string) []Candidate {
	var c []Candidate
	if env != "" {
		c = append(c, Candidate{env, "named by " + EnvLib})
	}
	if exe == "" {
		return c
	}
	exeDir := filepath.Dir(exe)
	c = append(c, Candidate{filepath.Join(exeDir, LibName), "beside the executable " + exe})
	if srcDir == "" || !filepath.IsAbs(srcDir) {
		return c
	}
	src := filepath.Clean(srcDir)
	build := filepath.Join(src, "build")
	if rel, err := filepath.Rel(src, exe); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && build != exeDir {
		c = append(c, Candidate{filepath.Join(build, LibName), "the build folder of " + src + ", the source tree this executable was built from and lives in"})
	}
	return c
}

// envWaitPolicy is read once, when libtorch's OpenMP runtime loads with the
// shim. Its default, active, keeps libtorch's idle threads spinning between
// parallel ops; with a BLAS that has threads of its own (Debian's libtorch
// with OpenBLAS) the two pools then fight over the cores on every matrix
// product, and a forward pass runs many times slower (docs/performance.md,
// "libtorch 2 on the CPU"). Passive threads sleep instead. A value the user
// set wins.
const envWaitPolicy = "OMP_WAIT_POLICY"

func open(path string) error {
	// dlerror's message belongs to the thread that called dlopen or dlsym:
	// purego makes them separate calls, between which the goroutine could
	// move to another thread and read an empty reason (3 loads in 30).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if _, set := os.LookupEnv(envWaitPolicy); !set {
		if err := os.Setenv(envWaitPolicy, "passive"); err != nil {
			return fmt.Errorf("setting %s: %w", envWaitPolicy, err)
		}
	}
	h, err := purego.Dlopen(abs, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return fmt.Errorf("found but it does not load (is its libtorch still installed? rebuild with `%s`): %w", fixCommand, err)
	}
	syms := map[string]*uintptr{
		"lt_call": &fnCall, "lt_free": &fnFree, "lt_tensor_free": &fnTFree,
		"lt_op_id": &fnOpID, "lt_from_data": &fnFromDt, "lt_to_data": &fnToDt,
	}
	for name, p := range syms {
		f, err := purego.Dlsym(h, name)
		if err != nil {
			purego.Dlclose(h)
			return fmt.Errorf("not a lavascope shim (no %s): %w", name, err)
		}
		*p = f
	}
	var missing []string
	for _, o := range opTable {
		name := append([]byte(o.name), 0)
		r, _, _ := purego.SyscallN(fnOpID, uintptr(unsafe.Pointer(&name[0])))
		o.id = int64(r)
		if o.id < 0 {
			missing = append(missing, o.name)
		}
	}
	if len(missing) > 0 {
		purego.Dlclose(h)
		return fmt.Errorf("shim is older than this program (lacks %s); rebuild it with `%s`", strings.Join(missing, ", "), fixCommand)
	}
	loaded.Store(true)
	var abi int64
	if err := callInts(opABI, nil, &abi); err != nil || abi != abiVersion {
		loaded.Store(false)
		purego.Dlclose(h)
		return fmt.Errorf("shim speaks ABI %d, this program %d; rebuild it with `%s`", abi, abiVersion, fixCommand)
	}
	libPath = abs
	return nil
}

// LibPath is the absolute path of the loaded shim, empty before Load.
func LibPath() string {
	loadMu.Lock()
	defer loadMu.Unlock()
	return libPath
}

// LibWhy says why Load took the shim it loaded (the setting that named it,
// or the place it was found); empty before Load.
func LibWhy() string {
	loadMu.Lock()
	defer loadMu.Unlock()
	return libWhy
}

// ErrNotLoaded is returned by every call made before a successful Load.
var ErrNotLoaded = errors.New("torch: the libtorch shim is not loaded (call torch.Load first)")

// opcode is one named op of the shim; its number is looked up at Load.
type opcode struct {
	name string
	id   int64
}

var opTable []*opcode

func newOp(name string) *opcode {
	o := &opcode{name: name, id: -1}
	opTable = append(opTable, o)
	return o
}

// frame is the argument block of lt_call; its layout matches struct Args in
// csrc/shim.h field for field.
type frame struct {
	in    *uintptr
	nin   int64
	ints  *int64
	nints int64
	dbls  *float64
	ndbls int64
	out   *uintptr
	nout  int64
	dout  *float64
	ndout int64
	iout  *int64
	niout int64
	sout  *byte
	err   *byte
}

// calls counts lt_call invocations (see Calls).
var calls atomic.Uint64

// Calls is how many ops have been called through the shim since the
// process started (lt_call; copies of data between the host and tensors
// are not ops): on a GPU each costs microseconds of host time whatever the
// kernel, so the count of a piece of work says how much of its time the
// binding takes.
func Calls() uint64 { return calls.Load() }

// call holds one lt_call's arguments and results; calls are pooled so an op
// allocates nothing here.
type call struct {
	f    frame
	in   []uintptr
	ints []int64
	dbls []float64
	out  []uintptr
	dout []float64
	iout []int64
}

var callPool = sync.Pool{New: func() any {
	return &call{
		in:   make([]uintptr, 0, 8),
		ints: make([]int64, 0, 16),
		dbls: make([]float64, 0, 8),
		out:  make([]uintptr, 4),
		dout: make([]float64, 4),
		iout: make([]int64, 16),
	}
}}

func getCall() *call {
	c := callPool.Get().(*call)
	c.in = c.in[:0]
	c.ints = c.ints[:0]
	c.dbls = c.dbls[:0]
	return c
}

func putCall(c *call) {
	if cap(c.in) > 256 || cap(c.out) > 256 || cap(c.iout) > 1024 {
		return
	}
	callPool.Put(c)
}

// wantOut makes room for n tensor results.
func (c *call) wantOut(n int) {
	if cap(c.out) < n {
		c.out = make([]uintptr, n)
	}
	c.out = c.out[:cap(c.out)]
}

func (c *call) wantIOut(n int) {
	if cap(c.iout) < n {
		c.iout = make([]int64, n)
	}
	c.iout = c.iout[:cap(c.iout)]
}

// exec runs op; the results are in c.out[:c.f.nout], c.dout[:c.f.ndout],
// c.iout[:c.f.niout] and the string one returned.
func (c *call) exec(o *opcode) (str string, err error) {
	if !loaded.Load() {
		return "", ErrNotLoaded
	}
	c.out = c.out[:cap(c.out)]
	c.dout = c.dout[:cap(c.dout)]
	c.iout = c.iout[:cap(c.iout)]
	c.f = frame{
		in: ptrOf(c.in), nin: int64(len(c.in)),
		ints: ptrOf(c.ints), nints: int64(len(c.ints)),
		dbls: ptrOf(c.dbls), ndbls: int64(len(c.dbls)),
		out: ptrOf(c.out), nout: int64(len(c.out)),
		dout: ptrOf(c.dout), ndout: int64(len(c.dout)),
		iout: ptrOf(c.iout), niout: int64(len(c.iout)),
	}
	calls.Add(1)
	purego.SyscallN(fnCall, uintptr(o.id), uintptr(unsafe.Pointer(&c.f)))
	runtime.KeepAlive(c)
	if c.f.err != nil {
		msg := takeString(c.f.err)
		c.f.err = nil
		return "", errors.New(msg)
	}
	if c.f.sout != nil {
		str = takeString(c.f.sout)
		c.f.sout = nil
	}
	return str, nil
}

func ptrOf[T any](s []T) *T {
	if cap(s) == 0 {
		return nil
	}
	return &s[:1][0]
}

// takeString copies a string the shim allocated and frees it.
func takeString(p *byte) string {
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	s := string(unsafe.Slice(p, n))
	purego.SyscallN(fnFree, uintptr(unsafe.Pointer(p)))
	return s
}

// callInts runs a process-wide op that takes ints and returns ints into res.
func callInts(o *opcode, args []int64, res ...*int64) error {
	c := getCall()
	defer putCall(c)
	c.ints = append(c.ints, args...)
	if _, err := c.exec(o); err != nil {
		return fmt.Errorf("torch: %s: %w", o.name, err)
	}
	for i, r := range res {
		if int64(i) < c.f.niout {
			*r = c.iout[i]
		}
	}
	return nil
}

func freeHandle(p uintptr) {
	if p != 0 && loaded.Load() {
		purego.SyscallN(fnTFree, p)
	}
}
