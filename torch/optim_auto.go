package torch

// AutoAdamWImpl is the implementation that AdamWAuto picks for float32
// parameters on dev (AdamWFused where libtorch has it, else AdamWForeach),
// found by making such an optimizer. Call it on the worker.
func AutoAdamWImpl(dev Device) (AdamWImpl, error) {
	s := NewScope()
	defer s.Close()
	p := s.Zeros([]int64{1}, Options{Device: dev})
	if err := p.SetRequiresGrad(true); err != nil {
		return "", err
	}
	opt, err := NewAdamW([]*Tensor{p}, DefaultAdamW())
	if err != nil {
		return "", err
	}
	impl := opt.Impl()
	return impl, opt.Close()
}
