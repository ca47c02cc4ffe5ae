// Package torch is lavascope's binding to libtorch: tensors, scopes, ops,
// autograd, the AdamW optimizer and devices. It is pure Go: the C ABI shim in
// csrc/ is compiled per machine by scripts/build-torch.sh (`make torch`) into
// build/liblavascope_torch.so and loaded at run time with purego, so the
// lavascope binary builds with CGO_ENABLED=0 and runs against whatever
// libtorch the machine has (Debian's, PyTorch's, a libtorch zip; CPU or CUDA).
//
// # Loading
//
// Load finds the shim (an explicit path, $LAVASCOPE_TORCH_LIB, beside the
// executable, or the build/ folder of the source tree the binary was built
// from while it still lives there; never the working directory or its
// parents, whose build/ anyone could plant) and fails with a *LoadError naming every place tried and the command that
// builds it. Every call before Load fails with ErrNotLoaded.
//
// # Scopes own tensors
//
// Memory is freed by scopes, not finalizers: a Scope owns each tensor
// created in it, and Close frees them all; LiveTensors counts the tensors
// alive in the shim so tests can check that nothing leaked. A tensor used
// after its scope closed gives an error wrapping ErrFreed, never a crash.
//
// Ops are methods on *Tensor so that model code reads like PyTorch:
//
//	attn := q.Matmul(k.Transpose(-2, -1)).MulScalar(scale).Add(mask).Softmax(-1)
//
// A tensor remembers its scope, and the result of an op belongs to the
// receiver's scope, or, when that scope is sealed, to the first operand whose
// scope is not. A model keeps its parameters in a scope it seals after
// loading; x.Linear(w, b) with x an activation then lands in x's scope, and
// an op whose operands are all parameters (w.T()) fails with ErrSealed instead
// of leaking into the parameters until the model closes. p.In(s) binds a
// parameter to a scope for such ops. Package-level functions of several
// tensors (Cat, Stack, Where, Embedding, Grad, ...) follow the same rule.
// This keeps a forward pass free of explicit scope arguments while every
// result still has exactly one owner.
//
// # Errors are sticky
//
// Tensor-producing ops do not return errors: a failed op returns a poisoned
// tensor that carries an *OpError naming the op and the operands' dtypes,
// shapes and devices ("torch: matmul: f32[2,3] cpu, f32[4,5] cpu: mat1 and
// mat2 shapes cannot be multiplied (2x3 and 4x5)"). Ops on a poisoned tensor
// do nothing and pass the first error on, and the scope keeps its first error
// (Scope.Err, also returned by Scope.Close). Every call that leaves tensor
// land or changes state returns an error: reading values (Float32s, Item,
// ...), Backward, SetRequiresGrad, RetainGrad, Copy_, the optimizer. So a
// failure cannot go unnoticed: it surfaces at the first value read or step
// taken, with the message of the op that caused it.
//
// # Threads
//
// Grad mode and the current CUDA stream are per OS thread in libtorch, so
// all torch calls of one model go through one Worker, whose goroutine is
// locked to its thread. NoGrad locks the calling goroutine while it runs. A
// Scope and its tensors are not safe for concurrent use.
package torch
