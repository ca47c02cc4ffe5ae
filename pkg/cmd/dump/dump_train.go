package dump

import (
	"github.com/spf13/pflag"

	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
)

// trainStepExtension is dump --train-step: it adds one training step's loss, gradients and updated
// parameters, under the names of testdata/hf-clip-tiny/expected.safetensors.
func trainStepExtension() dumpExtension {
	var on bool
	return dumpExtension{
		name: "train-step",
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&on, "train-step", false, "also write loss, grad.* and after_step.* of one AdamW step\n(lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.01: torch's defaults); image i goes with text i")
		},
		mutates: true,
		run: func(d *dumpRun) error {
			if !on {
				return nil
			}
			res, err := model.TrainStep(d.scope, d.model, d.pixels, d.ids, torch.DefaultAdamW())
			if err != nil {
				return err
			}
			if err := d.put("loss", res.Loss); err != nil {
				return err
			}
			for _, p := range res.Grads {
				if err := d.put("grad."+p.Name, p.Tensor); err != nil {
					return err
				}
			}
			for _, p := range res.After {
				if err := d.put("after_step."+p.Name, p.Tensor); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
