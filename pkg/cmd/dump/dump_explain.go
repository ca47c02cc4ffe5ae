package dump

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/lavascope/lavascope/explain"
)

// relevanceExtension is dump --relevance: it adds Chefer relevance as the reference notebook computes
// it, under the names of testdata/hf-clip-tiny/expected.safetensors.
func relevanceExtension() dumpExtension {
	var on bool
	return dumpExtension{
		name: "relevance",
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&on, "relevance", false, "also write Chefer relevance for the target sum of logits_per_image[i, i]:\n"+
				"rel_image_{last,all} [I,G²], rel_text_{last,all} [T,N], rel_text_full_{last,all} [T,N,N]\n(start layer last and all; image i goes with text i)")
		},
		run: func(d *dumpRun) error {
			if !on {
				return nil
			}
			ni, nt := int(d.pixels.Size(0)), int(d.ids.Size(0))
			if ni != nt {
				return fmt.Errorf("relevance pairs image i with text i: got %d images and %d texts", ni, nt)
			}
			for _, tc := range []struct {
				tag   string
				start explain.StartLayer
			}{{"last", explain.LastLayer}, {"all", explain.AllLayers}} {
				res, err := explain.Explain(d.model, d.pixels, d.ids, explain.Own(ni), explain.Options{Method: explain.Chefer, Start: tc.start, Matrices: true})
				if err != nil {
					return err
				}
				var img, txt, full []float32
				for i, r := range res {
					img = append(img, r.Image(i).Raw...)
					txt = append(txt, r.Text(i).Raw...)
					full = append(full, r.Text(i).Matrix...)
				}
				g := int64(res[0].Image(0).Grid)
				n := d.ids.Size(1)
				for _, o := range []struct {
					name  string
					v     []float32
					shape []int64
				}{
					{"rel_image_" + tc.tag, img, []int64{int64(ni), g * g}},
					{"rel_text_" + tc.tag, txt, []int64{int64(nt), n}},
					{"rel_text_full_" + tc.tag, full, []int64{int64(nt), n, n}},
				} {
					if err := d.put(o.name, d.scope.FromFloat32(o.v, o.shape...)); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
}
