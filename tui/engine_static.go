package tui

import (
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
)

// staticKey is a kind of explanation request: the work of a CUDA graph.
type staticKey struct {
	readings         int
	method           explain.Method
	start, textStart explain.StartLayer
	target           Target
}

// maxStatics bounds the captured graphs: each keeps the memory of one
// forward and backward pass, on the GPU (docs/performance.md, "Figures
// behind comments").
const maxStatics = 3

// staticCache keeps explainers captured in CUDA graphs per kind of request,
// most recently used last, so that the pair after pair of the explorer
// replays one graph each. It belongs to the engine's worker.
type staticCache struct {
	// on says whether Explain uses the cache; graph whether its
	// explainers capture CUDA graphs (off only in tests, to run the same
	// path on the CPU).
	on, graph bool
	entries   []staticEntry
	// failed remembers the kinds whose capture failed, which then run op
	// by op: trying again would fail again.
	failed map[staticKey]bool
}

type staticEntry struct {
	key staticKey
	st  *explain.Static
}

// newStaticCache makes the cache of an engine on dev: on where wanted and
// explanations can be captured in CUDA graphs.
func newStaticCache(dev torch.Device, want bool) staticCache {
	on := want && torch.CUDAGraphsUsable(dev) == nil
	return staticCache{on: on, graph: on}
}

// get returns the captured explainer of key, capturing it on first use
// with texts as wide as width; nil when the targets need more than one
// pass or the capture failed.
func (c *staticCache) get(m *model.CLIP, key staticKey, width int, targets []explain.Target) *explain.Static {
	for i, e := range c.entries {
		if e.key == key {
			c.entries = append(append(c.entries[:i:i], c.entries[i+1:]...), e)
			return e.st
		}
	}
	if c.failed[key] {
		return nil
	}
	st, err := explain.NewStatic(m, key.readings, key.readings, width, targets, explain.Options{Method: key.method, Start: key.start, TextStart: &key.textStart}, c.graph)
	if err != nil {
		if c.failed == nil {
			c.failed = map[staticKey]bool{}
		}
		c.failed[key] = true
		return nil
	}
	if len(c.entries) == maxStatics {
		c.entries[0].st.Close()
		c.entries = c.entries[1:]
	}
	c.entries = append(c.entries, staticEntry{key, st})
	return st
}

// close frees every captured graph.
func (c *staticCache) close() {
	for _, e := range c.entries {
		e.st.Close()
	}
	c.entries = nil
}
