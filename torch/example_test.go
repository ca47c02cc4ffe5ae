package torch_test

import (
	"fmt"
	"log"

	"github.com/lavascope/lavascope/torch"
)

// A linear layer and a softmax, forward and backward, on a worker. (No
// Output line: examples are compiled everywhere but run only where the shim
// is; the tests cover the values.)
func Example() {
	if err := torch.Load(""); err != nil {
		log.Fatal(err)
	}
	w := torch.NewWorker()
	defer w.Close()
	err := w.Do(func() error {
		s := torch.NewScope()
		defer s.Close()
		x := s.FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
		W := s.Randn([]int64{4, 3}, torch.Options{})
		b := s.Zeros([]int64{4}, torch.Options{})
		if err := W.SetRequiresGrad(true); err != nil {
			return err
		}
		p := x.Linear(W, b).Softmax(-1) // [2,4]
		if err := p.RetainGrad(); err != nil {
			return err
		}
		loss := p.Select(1, 0).Log().MeanAll().Neg()
		if err := loss.Backward(nil); err != nil { // also reports any op error above
			return err
		}
		gw, err := W.Grad().Float32s()
		if err != nil {
			return err
		}
		fmt.Println(len(gw), p.Grad())
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
