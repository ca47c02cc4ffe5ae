package model

import (
	"errors"
	"fmt"

	"github.com/lavascope/lavascope/torch"
)

// StepResult is one training step on fixed inputs: what the reference
// fixtures record (testdata/hf-clip-tiny: loss, grad.*, after_step.*).
type StepResult struct {
	// Loss is the contrastive loss before the step, shape [1].
	Loss *torch.Tensor
	// Grads are the gradients of the loss and After the parameters after
	// the step, both in the order of Params.
	Grads, After []Param
}

// TrainStep does one step of CLIP's contrastive loss with AdamW on a batch
// whose image i goes with text i, as transformers and torch.optim.AdamW do
// it: forward, loss, backward, one optimizer step (no clipping, no
// schedule). m's parameters are updated in place and left not requiring
// grad. The results belong to s. It runs on the caller's goroutine, which
// must be the model's torch worker.
func TrainStep(s *torch.Scope, m *CLIP, pixels, ids *torch.Tensor, o torch.AdamWOptions) (*StepResult, error) {
	if err := m.SetRequiresGrad(true); err != nil {
		return nil, err
	}
	res, err := trainStep(s, m, pixels, ids, o)
	return res, errors.Join(err, m.SetRequiresGrad(false))
}

func trainStep(s *torch.Scope, m *CLIP, pixels, ids *torch.Tensor, o torch.AdamWOptions) (*StepResult, error) {
	params := m.Params()
	ts := make([]*torch.Tensor, len(params))
	for i, p := range params {
		ts[i] = p.Tensor
	}
	opt, err := torch.NewAdamW(ts, o)
	if err != nil {
		return nil, err
	}
	defer opt.Close()
	out, err := m.Forward(s, pixels, ids, ForwardOptions{Grad: true})
	if err != nil {
		return nil, err
	}
	if n, k := out.LogitsPerImage.Size(0), out.LogitsPerImage.Size(1); n != k {
		return nil, fmt.Errorf("train step: %d images and %d texts; the contrastive loss pairs image i with text i", n, k)
	}
	loss := ContrastiveLoss(out.LogitsPerImage, out.LogitsPerText)
	if err := loss.Backward(nil); err != nil {
		return nil, fmt.Errorf("train step: backward: %w", err)
	}
	res := &StepResult{Loss: loss.Detach().Reshape(1)}
	for _, p := range params {
		res.Grads = append(res.Grads, Param{Name: p.Name, Tensor: p.Tensor.In(s).Grad().Clone()})
	}
	if err := opt.Step(); err != nil {
		return nil, fmt.Errorf("train step: %w", err)
	}
	for _, p := range params {
		res.After = append(res.After, Param{Name: p.Name, Tensor: p.Tensor.In(s).Detach().Clone()})
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("train step: %w", err)
	}
	return res, opt.ZeroGrad()
}
