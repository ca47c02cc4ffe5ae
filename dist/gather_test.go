package dist

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

func TestShare(t *testing.T) {
	for _, c := range []struct{ n, world int }{{10, 3}, {2, 4}, {7, 1}, {0, 2}, {8, 8}, {9, 2}} {
		next := 0
		for r := range c.world {
			lo, hi := Share(c.n, r, c.world)
			if lo != next || hi < lo || hi-lo > c.n/c.world+1 || hi-lo < c.n/c.world {
				t.Errorf("Share(%d, %d, %d) = [%d, %d) after %d", c.n, r, c.world, lo, hi, next)
			}
			next = hi
		}
		if next != c.n {
			t.Errorf("n %d, world %d: the shares end at %d", c.n, c.world, next)
		}
	}
	if lo, hi := Share(5, 2, 2); lo != hi {
		t.Errorf("a rank outside the world gets [%d, %d)", lo, hi)
	}
}

func TestGatherTwoProcesses(t *testing.T) {
	if torchtest.IsRank() {
		t.Skip("a rank does not start ranks")
	}
	torchtest.RequireGloo(t)
	torchtest.RunRanks(t, 2, "TestGatherChild", 90*time.Second)
}

type gathered struct {
	Name   string
	Floats []float64
	Keys   map[string]int
}

// TestGatherChild is one rank of TestGatherTwoProcesses: values of
// different lengths come back exact, in rank order.
func TestGatherChild(t *testing.T) {
	g := torchtest.JoinRanks(t)
	r := g.Rank()
	mine := gathered{Name: strings.Repeat("r", 1+1000*r), Floats: []float64{math.Pi * float64(r+1), math.SmallestNonzeroFloat64}}
	if r == 1 {
		mine.Keys = map[string]int{"one": 1}
	}
	all, err := Gather(g, torch.CPU, mine)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("%d values for 2 ranks", len(all))
	}
	for k, v := range all {
		if len(v.Name) != 1+1000*k || !slices.Equal(v.Floats, []float64{math.Pi * float64(k+1), math.SmallestNonzeroFloat64}) {
			t.Errorf("rank %d's value: %d-byte name, floats %v", k, len(v.Name), v.Floats)
		}
	}
	if all[1].Keys["one"] != 1 || all[0].Keys != nil {
		t.Errorf("maps: %v, %v", all[0].Keys, all[1].Keys)
	}
}
