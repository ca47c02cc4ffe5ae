package explain

import (
	"fmt"

	"github.com/lavascope/lavascope/model"
)

// DumpRelevance adds to d Chefer relevance as the reference notebook
// computes it, for the target sum of logits_per_image[i, i] (image i goes
// with text i), under the names of testdata/hf-clip-tiny/expected.safetensors:
// rel_image_{last,all} [I,G²], rel_text_{last,all} [T,N] and
// rel_text_full_{last,all} [T,N,N], for start layer last and all.
func DumpRelevance(d *model.Dump) error {
	ni, nt := int(d.Pixels.Size(0)), int(d.IDs.Size(0))
	if ni != nt {
		return fmt.Errorf("relevance pairs image i with text i: got %d images and %d texts", ni, nt)
	}
	for _, tc := range []struct {
		tag   string
		start StartLayer
	}{{"last", LastLayer}, {"all", AllLayers}} {
		res, err := Explain(d.Model, d.Pixels, d.IDs, Own(ni), Options{Method: Chefer, Start: tc.start, Matrices: true})
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
		n := d.IDs.Size(1)
		for _, o := range []struct {
			name  string
			v     []float32
			shape []int64
		}{
			{"rel_image_" + tc.tag, img, []int64{int64(ni), g * g}},
			{"rel_text_" + tc.tag, txt, []int64{int64(nt), n}},
			{"rel_text_full_" + tc.tag, full, []int64{int64(nt), n, n}},
		} {
			if err := d.Put(o.name, d.Scope.FromFloat32(o.v, o.shape...)); err != nil {
				return err
			}
		}
	}
	return nil
}
