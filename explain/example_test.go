package explain_test

import (
	"fmt"

	"github.com/lavascope/lavascope/explain"
)

func ExampleUpsample() {
	g, _ := explain.NewGrid(2, 2, []float32{0, 1, 2, 3})
	up, _ := explain.Upsample(g, 4, 4)
	for y := range up.H {
		fmt.Println(up.V[y*up.W : (y+1)*up.W])
	}
	// Output:
	// [0 0.25 0.75 1]
	// [0.5 0.75 1.25 1.5]
	// [1.5 1.75 2.25 2.5]
	// [2 2.25 2.75 3]
}

func ExampleColormap_At() {
	for _, v := range []float32{0, 0.5, 1} {
		fmt.Println(explain.Jet.At(v))
	}
	// Output:
	// {0 0 128 255}
	// {126 255 130 255}
	// {128 0 0 255}
}
