package train

import "fmt"

// splitsBatch says why a batch of batchPairs pairs cannot be shared by
// world ranks: each takes an equal run of every batch, and pairs are never
// split.
func splitsBatch(batchPairs int) func(world int, unit string) error {
	return func(world int, unit string) error {
		if batchPairs%world != 0 {
			return fmt.Errorf("--batch-pairs %d does not split into %d %s: give a multiple of their number (pairs are never split)", batchPairs, world, unit)
		}
		return nil
	}
}
