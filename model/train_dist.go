package model

// Data-parallel training: several processes (ranks), each with the whole
// model, each taking an equal run of every batch's pairs.
//
// CLIP's loss couples the whole batch: its logits are batch × batch, so the
// loss of a split batch is not the sum of the ranks' losses. Each rank
// therefore gathers every rank's embeddings (its own rows keep their
// gradient, the others' are constants: open_clip's local_loss=False) and
// computes the loss of the whole batch, the same number on every rank. The
// gradient of a rank's own embeddings is then exactly the whole batch's,
// and the parameters' gradient of the batch is the SUM over the ranks of
// the gradients their own items give, which is what is all-reduced (not a
// mean: each rank's loss is already the batch's mean). The logit scale
// enters the loss directly on every rank, so all but rank 0 see it as a
// constant, or the sum would count it world times. The step is then the
// single-process step up to the order of floating-point sums.
//
// The gradients are summed in buckets while the backward pass runs
// (torch.GradReducer, as DDP's Reducer): a bucket's all-reduce starts as
// soon as backward has produced all its gradients. NoOverlap sums them
// after the backward pass instead, the reference path.

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/lavascope/lavascope/torch"
)

func (o *TrainOptions) validateGroup() error {
	if o.Group == nil {
		return nil
	}
	if o.BucketBytes < 0 {
		return fmt.Errorf("buckets of %d bytes", o.BucketBytes)
	}
	return checkWorld(o.BatchPairs, o.Group.WorldSize(), o.Graphs)
}

// checkWorld says why batches of batchPairs pairs cannot train on world
// ranks (with graphs, the graphed step).
func checkWorld(batchPairs, world int, graphs bool) error {
	switch {
	case batchPairs%world != 0:
		return fmt.Errorf("a batch of %d pairs does not split into %d ranks: give --batch-pairs a multiple of the world size (pairs are never split)", batchPairs, world)
	case graphs:
		return errors.New("a graphed training step (--graphs) does not run data-parallel")
	}
	return nil
}

// distStep is OptimizerStep on this rank's share of the batch, the loss
// being the whole batch's (see the comment at the top of the file).
func distStep(sc *torch.Scope, m *CLIP, opt *torch.AdamW, params []*torch.Tensor, px, ids *torch.Tensor, o StepOptions, gs gradSum) (loss, norm float64, err error) {
	g := gs.g
	out, err := mixedForward(sc, m, px, ids, o.Precision)
	if err != nil {
		return 0, 0, err
	}
	img, err := g.AllGather(out.Image.Embeds, true)
	if err != nil {
		return 0, 0, fmt.Errorf("gathering the image embeddings: %w", err)
	}
	txt, err := g.AllGather(out.Text.Embeds, true)
	if err != nil {
		return 0, 0, fmt.Errorf("gathering the text embeddings: %w", err)
	}
	scale := m.logitScale.In(sc).Exp()
	if g.Rank() != 0 {
		// 0·scale keeps a (zero) gradient, which the reference path's
		// all-reduce needs on every rank for every parameter.
		scale = scale.MulScalar(0).Add(scale.Detach())
	}
	perImage, perText := scaledLogits(scale, img, txt)
	return finishStep(sc, m, opt, params, ContrastiveLoss(perImage, perText), o, gs)
}

// gradSum is how a step sums its gradients over the ranks: none without a
// group, during backward with a reducer, after it without one.
type gradSum struct {
	g       *torch.ProcessGroup
	reducer *torch.GradReducer
	// bucket is the size of the buckets after backward (0: the default).
	bucket int64
}

// backward runs l's backward pass and leaves in params' gradients their
// sums over the ranks.
func (gs gradSum) backward(sc *torch.Scope, l *torch.Tensor, params []*torch.Tensor) error {
	if gs.reducer != nil {
		if err := gs.reducer.Prepare(); err != nil {
			return err
		}
	}
	if err := l.Backward(nil); err != nil {
		return fmt.Errorf("backward: %w", err)
	}
	switch {
	case gs.reducer != nil:
		if _, err := gs.reducer.Finish(); err != nil {
			return fmt.Errorf("summing the gradients over the ranks: %w", err)
		}
	case gs.g != nil:
		return sumGrads(sc, gs.g, params, gs.bucket)
	}
	return nil
}

// hookReducer makes the reducer of the run's trainable parameters, unless
// NoOverlap asks for the reference path.
func (t *trainer) hookReducer() error {
	if t.o.NoOverlap {
		return nil
	}
	return t.w.Do(func() error {
		r, err := t.o.Group.NewGradReducer(t.tensors, t.o.BucketBytes, false)
		if err != nil {
			return fmt.Errorf("hooking the gradients: %w", err)
		}
		t.reducer = r
		return nil
	})
}

// sumGrads replaces the gradients of params with their sums over g's ranks
// after the backward pass.
func sumGrads(sc *torch.Scope, g *torch.ProcessGroup, params []*torch.Tensor, bucket int64) error {
	grads := make([]*torch.Tensor, len(params))
	for i, p := range params {
		grads[i] = p.In(sc).Grad()
		if err := grads[i].Err(); err != nil {
			return fmt.Errorf("gradient of parameter %d: %w", i, err)
		}
	}
	if err := g.AllReduce(grads, false, bucket); err != nil {
		return fmt.Errorf("summing the gradients over the ranks: %w", err)
	}
	return nil
}

// syncRanks makes every rank start where rank 0 does: its step, weights and
// optimizer state (rank 0 alone reads a resumed run), after checking that
// the ranks train the same data with the same settings. Saved state is
// global (step, data position), so a run resumes with any world size.
func (t *trainer) syncRanks(fingerprint string) error {
	g := t.o.Group
	h := fnv.New64a()
	// The buckets too: ranks whose collectives differ would wait on each
	// other or sum mismatched buffers.
	bucket := t.o.BucketBytes
	if bucket == 0 {
		bucket = torch.DefaultBucketBytes
	}
	fmt.Fprintf(h, "%s|%d|%d|%d|%d|%d|%s|%v|%d|%v", fingerprint, t.train.Len(), t.o.BatchPairs, t.o.Steps, t.o.Seed, len(t.tensors), t.o.Input, t.o.AdamW, bucket, t.o.NoOverlap)
	sum := int64(h.Sum64() >> 1)
	return t.w.Do(func() error {
		sc := torch.NewScope()
		defer sc.Close()
		n := len(t.tensors)
		head := make([]int64, 2+n)
		head[0], head[1] = sum, int64(t.state.Step)
		var st map[string]*torch.Tensor
		if g.Rank() == 0 {
			var err error
			if st, err = t.opt.State(sc); err != nil {
				return err
			}
			for i := range n {
				head[2+i] = -1
				if s := st["step."+strconv.Itoa(i)]; s != nil {
					v, err := s.Item()
					if err != nil {
						return err
					}
					head[2+i] = int64(v)
				}
			}
		}
		ht := sc.FromInt64(head, int64(len(head)))
		if err := g.Broadcast([]*torch.Tensor{ht}, 0); err != nil {
			return fmt.Errorf("receiving rank 0's state: %w", err)
		}
		got, err := ht.Int64s()
		if err != nil {
			return err
		}
		if got[0] != sum {
			return fmt.Errorf("rank %d has other data or settings than rank 0 (the training split, its size, --batch-pairs, --steps, --seed, --input, the optimizer, the model, --bucket-mb or --overlap differ)", g.Rank())
		}
		names := []string{"exp_avg.", "exp_avg_sq."}
		if t.o.AdamW.AMSGrad {
			names = append(names, "max_exp_avg_sq.")
		}
		list := append([]*torch.Tensor{}, t.tensors...)
		load := map[string]*torch.Tensor{}
		for i, step := range got[2:] {
			if step < 0 {
				continue
			}
			is := strconv.Itoa(i)
			for _, name := range names {
				x := st[name+is]
				if g.Rank() != 0 {
					x = t.tensors[i].In(sc).ZerosLike()
				} else if x == nil {
					return fmt.Errorf("optimizer state of parameter %d lacks %s", i, name+is)
				}
				list = append(list, x)
				load[name+is] = x
			}
			load["step."+is] = sc.Scalar(float64(step), torch.Options{DType: torch.Int64})
		}
		if err := g.Broadcast(list, 0); err != nil {
			return fmt.Errorf("receiving rank 0's weights and optimizer state: %w", err)
		}
		if g.Rank() == 0 {
			return nil
		}
		t.state.Step = int(got[1])
		if len(load) > 0 {
			return t.opt.LoadState(load)
		}
		return nil
	})
}

// stopAgreed reports whether the run stops before its next step: its
// context is done or, with a group, any rank's is, so that all ranks stop
// after the same step (one tiny all-reduce a step).
func (t *trainer) stopAgreed() (bool, error) {
	stop := t.ctx.Err() != nil
	g := t.o.Group
	if g == nil {
		return stop, nil
	}
	err := t.w.Do(func() error {
		sc := torch.NewScope()
		defer sc.Close()
		var v float32
		if stop {
			v = 1
		}
		f := sc.FromFloat32([]float32{v}, 1)
		if err := g.AllReduce([]*torch.Tensor{f}, false, 0); err != nil {
			return fmt.Errorf("agreeing on a stop: %w", err)
		}
		got, err := f.Float32s()
		stop = err == nil && got[0] > 0
		return err
	})
	return stop, err
}
