package main

import (
	"context"

	"github.com/lavascope/lavascope/tui"
)

// torchEngine opens the libtorch engine: the explorer's default.
func torchEngine(a *app, data exploreData, _ exploreFlags) func(context.Context) (tui.Engine, error) {
	{
		return func(ctx context.Context) (tui.Engine, error) {
			o := tui.TorchOptions{
				Checkpoint: a.cfg.Checkpoint, Base: a.cfg.Base, Device: a.cfg.Device, TorchLib: a.cfg.TorchLib, Threads: a.cfg.Threads,
				Data: data.shown, DataName: a.cfg.Data, NoGraphs: a.cfg.CUDAGraphs == "off", TF32: a.cfg.TF32,
				StartLayerText: a.cfg.StartLayerText,
			}
			var err error
			if o.Train, o.Val, err = data.splits(); err != nil {
				return nil, err
			}
			e, err := tui.OpenTorch(ctx, o)
			if err != nil {
				return nil, err
			}
			return e, nil
		}
	}
}
