package main

import (
	"context"

	"github.com/lavascope/lavascope/tui"
	"github.com/lavascope/lavascope/tui/torchengine"
)

// torchEngine opens the libtorch engine: the explorer's default.
func torchEngine(a *app, data exploreData, f exploreFlags) func(context.Context) (tui.Engine, error) {
	{
		return func(ctx context.Context) (tui.Engine, error) {
			o := torchengine.Options{
				Checkpoint: a.cfg.Checkpoint, Base: a.cfg.Base, Device: a.cfg.Device, TorchLib: a.cfg.TorchLib, Threads: a.cfg.Threads,
				Data: data.shown, DataName: a.cfg.Data, NoGraphs: a.cfg.CUDAGraphs == "off", TF32: a.cfg.TF32,
				StartLayerText: f.textStart,
			}
			var err error
			if o.Train, o.Val, err = data.splits(); err != nil {
				return nil, err
			}
			e, err := torchengine.Open(ctx, o)
			if err != nil {
				return nil, err
			}
			return e, nil
		}
	}
}
