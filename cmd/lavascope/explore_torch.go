package main

import (
	"context"

	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/tui"
)

// The libtorch engine: the explorer's default.
func init() {
	engineOpeners["torch"] = func(a *app, data exploreData, _ exploreFlags) func(context.Context) (tui.Engine, error) {
		return func(ctx context.Context) (tui.Engine, error) {
			o := tui.TorchOptions{
				Checkpoint: a.cfg.Checkpoint, Device: a.cfg.Device, TorchLib: a.cfg.TorchLib, Threads: a.cfg.Threads,
				Data: data.shown, DataName: a.cfg.Data,
			}
			if a.cfg.Data == demo.Name {
				// The demo's splits draw each pair when asked for it, so
				// fine-tuning does not hold a thousand pairs of images in
				// memory as data.all() would.
				var err error
				if o.Train, err = demo.Split(loader.SplitTrain); err != nil {
					return nil, err
				}
				if o.Val, err = demo.Split(loader.SplitVal); err != nil {
					return nil, err
				}
			} else {
				all, err := data.all()
				if err != nil {
					return nil, err
				}
				o.Train, o.Val = model.DatasetSplit(all, loader.SplitTrain), model.DatasetSplit(all, loader.SplitVal)
			}
			e, err := tui.OpenTorch(ctx, o)
			if err != nil {
				return nil, err
			}
			return e, nil
		}
	}
}
