package tui

import "context"

// BatchExplainer is implemented by an engine that explains several pairs in
// one call faster than one call each: a libtorch engine on the CPU, whose
// per-call overhead dominates a small model's explanation. The explorer's
// background sweep hands it chunks of the split, sized so that a chunk
// takes about sweepBudget; the pair the user looks at is always asked for
// alone, with Explain. Engines without it are swept pair by pair.
type BatchExplainer interface {
	// ExplainMany returns the explanations of reqs, in their order, each
	// what Explain returns for it within float32 rounding (the batch's
	// products are laid out differently). Its Elapsed is the call's time
	// shared evenly among them. A cancelled ctx stops the call between
	// stages and ExplainMany returns ctx.Err() and nothing.
	ExplainMany(ctx context.Context, reqs []ExplainRequest) ([]*Explanation, error)
}
