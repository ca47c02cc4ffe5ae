package torchsave

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// The unpickler builds plain values only. A pickle is a program for a stack
// machine, and Python's unpickler calls whatever GLOBAL names; this one
// resolves GLOBAL against a short list (the globals torch.load accepts with
// weights_only=True that a state_dict needs) and evaluates those calls
// itself, so nothing in the file is ever run.
//
// Values: nil (None), bool, int64, float64, string, []byte, *tuple, *list,
// *dict, *Tensor, *storage, storageType and global.

type tuple struct{ items []any }

type list struct{ items []any }

// dict keeps insertion order (OrderedDict's, and the file's) for messages.
type dict struct {
	keys  []any
	vals  []any
	index map[any]int
}

func newDict() *dict { return &dict{index: make(map[any]int)} }

func (d *dict) set(k, v any) error {
	switch k.(type) {
	case string, int64, bool, float64, nil:
	default:
		return fmt.Errorf("dict key of type %s (only strings and numbers are read)", typeName(k))
	}
	if i, ok := d.index[k]; ok {
		d.vals[i] = v
		return nil
	}
	d.index[k] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
	return nil
}

func (d *dict) get(k string) (any, bool) {
	i, ok := d.index[k]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

// global is an allowed Python global, called by REDUCE.
type global string

const (
	gOrderedDict   global = "collections.OrderedDict"
	gRebuildTensor global = "torch._utils._rebuild_tensor_v2"
	gRebuildParam  global = "torch._utils._rebuild_parameter"
	gTorchSize     global = "torch.Size"
	gCodecsEncode  global = "_codecs.encode"
)

// Caps that keep a hostile pickle's memory bounded whatever its length
// fields say, far above what a state_dict uses (a few memo entries per
// tensor).
const (
	maxStack         = 1 << 20
	maxMemo          = 1 << 20
	maxContainerSize = 1 << 24
)

// storageType is a torch.*Storage class named in a persistent id.
type storageType struct {
	name  string
	dtype DType
}

var storageTypes = map[string]DType{
	"FloatStorage": F32, "DoubleStorage": F64, "HalfStorage": F16, "BFloat16Storage": BF16,
	"LongStorage": I64, "IntStorage": I32, "ShortStorage": I16, "CharStorage": I8,
	"ByteStorage": U8, "BoolStorage": Bool,
}

// RefusedError is a pickle that names a Python global outside the allowed
// list: what torch.load(weights_only=True) also refuses.
type RefusedError struct {
	Global string // module.name
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused: the pickle names the Python global %s; only tensors, dicts, lists, tuples, numbers and strings are read, and nothing in the file is run (for a whole model saved with torch.save(model), save model.state_dict() instead)", e.Global)
}

func resolveGlobal(module, name string) (any, error) {
	full := module + "." + name
	switch g := global(full); g {
	case gOrderedDict, gRebuildTensor, gRebuildParam, gTorchSize, gCodecsEncode:
		return g, nil
	}
	if module == "torch" {
		if dt, ok := storageTypes[name]; ok {
			return storageType{name: full, dtype: dt}, nil
		}
	}
	return nil, &RefusedError{Global: full}
}

// mark is the stack marker MARK pushes.
type mark struct{}

// unpickler runs one pickle. persistent loads a storage from its persistent id.
type unpickler struct {
	data       []byte
	pos        int
	stack      []any
	memo       map[uint32]any
	persistent func(pid *tuple) (any, error)
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case *tuple:
		return "tuple"
	case *list:
		return "list"
	case *dict:
		return "dict"
	case *Tensor:
		return "tensor"
	case *storage:
		return "storage"
	case storageType:
		return "storage type"
	case global:
		return "function " + string(v.(global))
	case mark:
		return "mark"
	}
	return fmt.Sprintf("%T", v)
}

// Pickle opcodes (Python's Lib/pickle.py) that torch.save's protocol 2 and
// the later protocols a user may ask for write for a state_dict.
const (
	opMark           = '('
	opStop           = '.'
	opPop            = '0'
	opPopMark        = '1'
	opDup            = '2'
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opBinInt2        = 'M'
	opNone           = 'N'
	opBinPersID      = 'Q'
	opReduce         = 'R'
	opBinString      = 'T'
	opShortBinString = 'U'
	opBinUnicode     = 'X'
	opAppend         = 'a'
	opBuild          = 'b'
	opGlobal         = 'c'
	opAppends        = 'e'
	opBinGet         = 'h'
	opLongBinGet     = 'j'
	opEmptyList      = ']'
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opSetItem        = 's'
	opTuple          = 't'
	opSetItems       = 'u'
	opEmptyDict      = '}'
	opEmptyTuple     = ')'
	opBinFloat       = 'G'
	opProto          = 0x80
	opNewObj         = 0x81
	opTuple1         = 0x85
	opTuple2         = 0x86
	opTuple3         = 0x87
	opNewTrue        = 0x88
	opNewFalse       = 0x89
	opLong1          = 0x8a
	opLong4          = 0x8b
	opBinBytes       = 'B'
	opShortBinBytes  = 'C'
	opShortBinUni    = 0x8c
	opBinUnicode8    = 0x8d
	opBinBytes8      = 0x8e
	opStackGlobal    = 0x93
	opMemoize        = 0x94
	opFrame          = 0x95
)

func (u *unpickler) fail(op byte, format string, args ...any) error {
	return fmt.Errorf("pickle byte %d (opcode 0x%02x): %s", u.pos, op, fmt.Sprintf(format, args...))
}

var errTruncated = errors.New("truncated")

func (u *unpickler) take(n uint64) ([]byte, error) {
	if n > uint64(len(u.data)-u.pos) {
		return nil, errTruncated
	}
	b := u.data[u.pos : u.pos+int(n)]
	u.pos += int(n)
	return b, nil
}

func (u *unpickler) push(v any) error {
	if len(u.stack) >= maxStack {
		return fmt.Errorf("stack deeper than %d", maxStack)
	}
	u.stack = append(u.stack, v)
	return nil
}

func (u *unpickler) pop() (any, error) {
	if len(u.stack) == 0 {
		return nil, errors.New("pop from an empty stack")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	if _, ok := v.(mark); ok {
		return nil, errors.New("unexpected MARK")
	}
	return v, nil
}

// pop2 pops the top two values; b was on top.
func (u *unpickler) pop2() (a, b any, err error) {
	if b, err = u.pop(); err != nil {
		return nil, nil, err
	}
	if a, err = u.pop(); err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) == 0 {
		return nil, errors.New("empty stack")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark pops the items above the topmost MARK, and the MARK.
func (u *unpickler) popMark() ([]any, error) {
	for i := len(u.stack) - 1; i >= 0; i-- {
		if _, ok := u.stack[i].(mark); ok {
			items := slices.Clone(u.stack[i+1:])
			u.stack = u.stack[:i]
			return items, nil
		}
	}
	return nil, errors.New("no MARK on the stack")
}

func (u *unpickler) put(idx uint32) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	if _, ok := u.memo[idx]; !ok && len(u.memo) >= maxMemo {
		return fmt.Errorf("memo larger than %d entries", maxMemo)
	}
	u.memo[idx] = v
	return nil
}

func (u *unpickler) get(idx uint32) error {
	v, ok := u.memo[idx]
	if !ok {
		return fmt.Errorf("memo entry %d was never stored", idx)
	}
	return u.push(v)
}

func decodeUTF8(b []byte) (string, error) {
	if !utf8.Valid(b) {
		return "", errors.New("string is not valid UTF-8")
	}
	return string(b), nil
}

// signedLE reads a little-endian two's complement integer of at most 8 bytes.
func signedLE(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if len(b) > 8 {
		return 0, fmt.Errorf("integer of %d bytes is too large", len(b))
	}
	var buf [8]byte
	copy(buf[:], b)
	if b[len(b)-1]&0x80 != 0 {
		for i := len(b); i < 8; i++ {
			buf[i] = 0xff
		}
	}
	return int64(binary.LittleEndian.Uint64(buf[:])), nil
}

// run executes the pickle and returns the value STOP leaves.
func (u *unpickler) run() (any, error) {
	u.memo = make(map[uint32]any)
	for {
		if u.pos >= len(u.data) {
			return nil, fmt.Errorf("pickle ends at byte %d without STOP (truncated?)", u.pos)
		}
		op := u.data[u.pos]
		u.pos++
		done, v, err := u.step(op)
		if err != nil {
			if errors.Is(err, errTruncated) {
				return nil, u.fail(op, "the pickle ends inside this opcode (truncated?)")
			}
			var re *RefusedError
			if errors.As(err, &re) {
				return nil, err
			}
			return nil, u.fail(op, "%v", err)
		}
		if done {
			return v, nil
		}
	}
}

func (u *unpickler) step(op byte) (done bool, result any, err error) {
	switch op {
	case opProto:
		b, err := u.take(1)
		if err != nil {
			return false, nil, err
		}
		if b[0] > 5 {
			return false, nil, fmt.Errorf("unsupported pickle protocol %d", b[0])
		}
	case opFrame:
		// Frames only group opcodes for buffered reading; the data is all here.
		if _, err := u.take(8); err != nil {
			return false, nil, err
		}
	case opStop:
		v, err := u.pop()
		if err != nil {
			return false, nil, err
		}
		return true, v, nil
	case opMark:
		return false, nil, u.push(mark{})
	case opPop:
		if len(u.stack) == 0 {
			return false, nil, errors.New("pop from an empty stack")
		}
		u.stack = u.stack[:len(u.stack)-1]
	case opPopMark:
		_, err := u.popMark()
		return false, nil, err
	case opDup:
		v, err := u.top()
		if err != nil {
			return false, nil, err
		}
		return false, nil, u.push(v)
	case opNone:
		return false, nil, u.push(nil)
	case opNewTrue:
		return false, nil, u.push(true)
	case opNewFalse:
		return false, nil, u.push(false)
	case opBinInt, opBinInt1, opBinInt2:
		v, err := u.uintLE(map[byte]int{opBinInt: 4, opBinInt1: 1, opBinInt2: 2}[op])
		if err != nil {
			return false, nil, err
		}
		if op == opBinInt { // the only signed one
			return false, nil, u.push(int64(int32(uint32(v))))
		}
		return false, nil, u.push(int64(v))
	case opLong1, opLong4:
		n, err := u.uintLE(map[byte]int{opLong1: 1, opLong4: 4}[op])
		if err != nil {
			return false, nil, err
		}
		b, err := u.take(n)
		if err != nil {
			return false, nil, err
		}
		v, err := signedLE(b)
		if err != nil {
			return false, nil, err
		}
		return false, nil, u.push(v)
	case opBinFloat:
		b, err := u.take(8)
		if err != nil {
			return false, nil, err
		}
		return false, nil, u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case opBinUnicode, opShortBinUni, opBinUnicode8, opBinString, opShortBinString, opBinBytes, opShortBinBytes, opBinBytes8:
		b, err := u.lengthPrefixed(op)
		if err != nil {
			return false, nil, err
		}
		switch op {
		case opBinBytes, opShortBinBytes, opBinBytes8:
			return false, nil, u.push(slices.Clone(b))
		}
		// Python 2 str (BINSTRING) holds text in the pickles torch writes.
		s, err := decodeUTF8(b)
		if err != nil {
			return false, nil, err
		}
		return false, nil, u.push(s)
	case opEmptyTuple:
		return false, nil, u.push(&tuple{})
	case opTuple:
		items, err := u.popMark()
		if err != nil {
			return false, nil, err
		}
		return false, nil, u.push(&tuple{items: items})
	case opTuple1, opTuple2, opTuple3:
		n := int(op-opTuple1) + 1
		items := make([]any, n)
		for i := n - 1; i >= 0; i-- {
			if items[i], err = u.pop(); err != nil {
				return false, nil, err
			}
		}
		return false, nil, u.push(&tuple{items: items})
	case opEmptyList:
		return false, nil, u.push(&list{})
	case opAppend, opAppends:
		var items []any
		if op == opAppend {
			v, err := u.pop()
			if err != nil {
				return false, nil, err
			}
			items = []any{v}
		} else if items, err = u.popMark(); err != nil {
			return false, nil, err
		}
		t, err := u.top()
		if err != nil {
			return false, nil, err
		}
		l, ok := t.(*list)
		if !ok {
			return false, nil, fmt.Errorf("APPEND to a %s", typeName(t))
		}
		if len(l.items)+len(items) > maxContainerSize {
			return false, nil, fmt.Errorf("list longer than %d", maxContainerSize)
		}
		l.items = append(l.items, items...)
	case opEmptyDict:
		return false, nil, u.push(newDict())
	case opSetItem, opSetItems:
		var items []any
		if op == opSetItem {
			k, v, err := u.pop2()
			if err != nil {
				return false, nil, err
			}
			items = []any{k, v}
		} else if items, err = u.popMark(); err != nil {
			return false, nil, err
		}
		if len(items)%2 != 0 {
			return false, nil, errors.New("SETITEMS with an odd number of items")
		}
		t, err := u.top()
		if err != nil {
			return false, nil, err
		}
		d, ok := t.(*dict)
		if !ok {
			return false, nil, fmt.Errorf("SETITEM on a %s", typeName(t))
		}
		if len(d.keys)+len(items)/2 > maxContainerSize {
			return false, nil, fmt.Errorf("dict larger than %d", maxContainerSize)
		}
		for i := 0; i < len(items); i += 2 {
			if err := d.set(items[i], items[i+1]); err != nil {
				return false, nil, err
			}
		}
	case opBinPut, opLongBinPut, opBinGet, opLongBinGet:
		idx, err := u.uintLE(map[byte]int{opBinPut: 1, opBinGet: 1, opLongBinPut: 4, opLongBinGet: 4}[op])
		if err != nil {
			return false, nil, err
		}
		if op == opBinPut || op == opLongBinPut {
			return false, nil, u.put(uint32(idx))
		}
		return false, nil, u.get(uint32(idx))
	case opMemoize:
		return false, nil, u.put(uint32(len(u.memo)))
	case opGlobal:
		module, err := u.line()
		if err != nil {
			return false, nil, err
		}
		name, err := u.line()
		if err != nil {
			return false, nil, err
		}
		g, err := resolveGlobal(module, name)
		if err != nil {
			return false, nil, err
		}
		return false, nil, u.push(g)
	case opStackGlobal:
		module, name, err := u.pop2()
		if err != nil {
			return false, nil, err
		}
		ms, ok1 := module.(string)
		ns, ok2 := name.(string)
		if !ok1 || !ok2 {
			return false, nil, errors.New("STACK_GLOBAL of non-strings")
		}
		g, err := resolveGlobal(ms, ns)
		if err != nil {
			return false, nil, err
		}
		return false, nil, u.push(g)
	case opBinPersID:
		pid, err := u.pop()
		if err != nil {
			return false, nil, err
		}
		t, ok := pid.(*tuple)
		if !ok {
			return false, nil, fmt.Errorf("persistent id is a %s, not a tuple", typeName(pid))
		}
		v, err := u.persistent(t)
		if err != nil {
			return false, nil, err
		}
		return false, nil, u.push(v)
	case opReduce:
		fn, args, err := u.pop2()
		if err != nil {
			return false, nil, err
		}
		at, ok := args.(*tuple)
		if !ok {
			return false, nil, fmt.Errorf("REDUCE with %s arguments", typeName(args))
		}
		g, ok := fn.(global)
		if !ok {
			return false, nil, fmt.Errorf("REDUCE calls a %s", typeName(fn))
		}
		v, err := call(g, at.items)
		if err != nil {
			return false, nil, fmt.Errorf("%s: %w", g, err)
		}
		return false, nil, u.push(v)
	case opBuild:
		state, err := u.pop()
		if err != nil {
			return false, nil, err
		}
		obj, err := u.top()
		if err != nil {
			return false, nil, err
		}
		// An OrderedDict state_dict carries its _metadata (module versions)
		// as instance attributes; they do not change the tensors.
		switch obj.(type) {
		case *dict, *Tensor:
			switch state.(type) {
			case nil, *dict, *tuple:
				return false, nil, nil
			}
		}
		return false, nil, fmt.Errorf("BUILD of a %s with a %s", typeName(obj), typeName(state))
	case opNewObj:
		return false, nil, errors.New("NEWOBJ (creating a Python object) is refused")
	default:
		return false, nil, fmt.Errorf("unsupported opcode")
	}
	return false, nil, nil
}

func (u *unpickler) lengthPrefixed(op byte) ([]byte, error) {
	size := 4
	switch op {
	case opShortBinUni, opShortBinString, opShortBinBytes:
		size = 1
	case opBinUnicode8, opBinBytes8:
		size = 8
	}
	n, err := u.uintLE(size)
	if err != nil {
		return nil, err
	}
	return u.take(n)
}

// uintLE reads an unsigned little-endian integer of size bytes (1 to 8).
func (u *unpickler) uintLE(size int) (uint64, error) {
	b, err := u.take(uint64(size))
	if err != nil {
		return 0, err
	}
	var buf [8]byte
	copy(buf[:], b)
	return binary.LittleEndian.Uint64(buf[:]), nil
}

// line reads a newline-terminated ASCII name (GLOBAL's operands).
func (u *unpickler) line() (string, error) {
	i := strings.IndexByte(string(u.data[u.pos:min(len(u.data), u.pos+256)]), '\n')
	if i < 0 {
		if len(u.data)-u.pos < 256 {
			return "", errTruncated
		}
		return "", errors.New("GLOBAL name longer than 255 bytes")
	}
	s := string(u.data[u.pos : u.pos+i])
	u.pos += i + 1
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return "", fmt.Errorf("GLOBAL name %q is not printable ASCII", s)
		}
	}
	return s, nil
}

// call evaluates an allowed global on its arguments.
func call(g global, args []any) (any, error) {
	switch g {
	case gOrderedDict:
		if len(args) != 0 {
			return nil, fmt.Errorf("%d arguments, want none", len(args))
		}
		return newDict(), nil
	case gTorchSize:
		if len(args) != 1 {
			return nil, fmt.Errorf("%d arguments, want 1", len(args))
		}
		t, ok := args[0].(*tuple)
		if !ok {
			return nil, fmt.Errorf("argument is a %s, want a tuple", typeName(args[0]))
		}
		return t, nil
	case gCodecsEncode:
		// Protocol 2 stores bytes as _codecs.encode(text, "latin1").
		if len(args) != 2 {
			return nil, fmt.Errorf("%d arguments, want 2", len(args))
		}
		s, ok1 := args[0].(string)
		enc, ok2 := args[1].(string)
		if !ok1 || !ok2 || (enc != "latin1" && enc != "latin-1") {
			return nil, errors.New("only encode(str, \"latin1\") is read")
		}
		b := make([]byte, 0, len(s))
		for _, r := range s {
			if r > 0xff {
				return nil, errors.New("a character beyond latin1")
			}
			b = append(b, byte(r))
		}
		return b, nil
	case gRebuildTensor:
		return rebuildTensor(args)
	case gRebuildParam:
		// _rebuild_parameter(data, requires_grad, backward_hooks)
		if len(args) != 3 {
			return nil, fmt.Errorf("%d arguments, want 3", len(args))
		}
		t, ok := args[0].(*Tensor)
		if !ok {
			return nil, fmt.Errorf("data is a %s, want a tensor", typeName(args[0]))
		}
		return t, nil
	}
	return nil, errors.New("not callable")
}

// rebuildTensor is _rebuild_tensor_v2(storage, storage_offset, size, stride,
// requires_grad, backward_hooks[, metadata]). Every index the view can reach
// is checked against the storage here, before any data is read.
func rebuildTensor(args []any) (any, error) {
	if len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("%d arguments, want 6 or 7", len(args))
	}
	st, ok := args[0].(*storage)
	if !ok {
		return nil, fmt.Errorf("storage is a %s", typeName(args[0]))
	}
	off, ok := args[1].(int64)
	if !ok || off < 0 {
		return nil, fmt.Errorf("storage offset %v is not a whole number ≥ 0", args[1])
	}
	size, err := ints(args[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := ints(args[3], "stride")
	if err != nil {
		return nil, err
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("size %v and stride %v differ in length", size, stride)
	}
	t := &Tensor{DType: st.dtype, Shape: size, stride: stride, offset: off, storage: st}
	n := int64(1)
	last := off // the largest element index the view reaches
	for i, d := range size {
		if d < 0 || stride[i] < 0 {
			return nil, fmt.Errorf("size %v, stride %v: negative entry", size, stride)
		}
		if d != 0 && n > math.MaxInt64/d {
			return nil, fmt.Errorf("size %v overflows", size)
		}
		n *= d
	}
	if n > 0 {
		for i, d := range size {
			if stride[i] != 0 && d-1 > (math.MaxInt64-last)/stride[i] {
				return nil, fmt.Errorf("size %v, stride %v, offset %d overflow", size, stride, off)
			}
			last += (d - 1) * stride[i]
		}
		if last >= st.numel {
			return nil, fmt.Errorf("size %v, stride %v, offset %d reach element %d of a storage of %d", size, stride, off, last, st.numel)
		}
	}
	if n > math.MaxInt64/int64(st.dtype.Size()) {
		return nil, fmt.Errorf("size %v overflows", size)
	}
	t.numel = n
	return t, nil
}

func ints(v any, what string) ([]int64, error) {
	t, ok := v.(*tuple)
	if !ok {
		return nil, fmt.Errorf("%s is a %s, want a tuple", what, typeName(v))
	}
	out := make([]int64, len(t.items))
	for i, x := range t.items {
		n, ok := x.(int64)
		if !ok {
			return nil, fmt.Errorf("%s has a %s", what, typeName(x))
		}
		out[i] = n
	}
	return out, nil
}
