package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/figure"
	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
	"github.com/lavascope/lavascope/pkg/cmd/explore"
	"github.com/lavascope/lavascope/tui"
	"github.com/lavascope/lavascope/tui/torchengine"
)

// TestExportMatchesExplain: for the same pair, method, start layer and
// target, the explorer's export (the demo engine's explanation written by
// tui.Export) and `lavascope explain` write the same figure files and the
// same report: the same keys and the same values, figure name included, up
// to float noise between batch shapes.
func TestExportMatchesExplain(t *testing.T) {
	torchtest.Require(t)
	cfg := explore.DemoData
	cfg.Split = loader.SplitTest
	pairs, err := synth.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ds := &loader.Dataset{Pairs: pairs[:3]}
	pair := &ds.Pairs[1]
	eng, err := torchengine.Open(context.Background(), torchengine.Options{Checkpoint: "demo", Device: "cpu", Data: ds, NoGraphs: true})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	cm, err := explain.ColormapNamed("viridis")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method explain.Method
		layer  string
		target tui.Target
	}{
		{explain.Chefer, "last", tui.TargetOwn},
		{explain.Chefer, "all", tui.TargetAll},
		{explain.Rollout, "last", tui.TargetTwin},
	} {
		name := string(c.method) + "/" + c.layer + "/" + c.target.String()
		scores, err := eng.Score(context.Background(), []string{pair.ID})
		if err != nil {
			t.Fatal(err)
		}
		exp, err := eng.Explain(context.Background(), tui.ExplainRequest{PairID: pair.ID, Method: c.method, StartLayer: mustStartLayer(t, c.layer), Target: c.target})
		if err != nil {
			t.Fatal(err)
		}
		exported := t.TempDir()
		files, err := tui.Export(exported, ds, pair, exp, &scores[0], cm)
		if err != nil {
			t.Fatal(err)
		}
		explained := t.TempDir()
		_, stderr, code := runCLI(t, "", "explain", "--checkpoint", "demo", "--data", "demo", "--pair", pair.ID,
			"--method", string(c.method), "--start-layer", c.layer, "--target", c.target.String(),
			"--metrics=false", "--colormap", cm.Name(), "--out", explained, "--device", "cpu")
		if code != 0 {
			t.Fatalf("%s: explain exit %d: %s", name, code, stderr)
		}
		if len(files) != 2+len(pair.Readings) {
			t.Fatalf("%s: export wrote %v, want a figure (PNG, SVG) and a report per reading", name, files)
		}
		// Both front ends draw the same figure under the same name.
		fig := figure.Name(pair.ID, c.method, mustStartLayer(t, c.layer), c.target)
		for k, ext := range []string{".png", ".svg"} {
			if filepath.Base(files[k]) != fig+ext {
				t.Errorf("%s: the export wrote %s, want %s%s", name, files[k], fig, ext)
			}
			if _, err := os.Stat(filepath.Join(explained, fig+ext)); err != nil {
				t.Errorf("%s: explain wrote no %s%s: %v", name, fig, ext, err)
			}
		}
		for j := range pair.Readings {
			got := readReport(t, files[2+j])
			want := readReport(t, filepath.Join(explained, loader.FileName(pair.ID)+"-r"+strconv.Itoa(j)+".json"))
			sameJSON(t, name+" reading "+strconv.Itoa(j), got, want)
		}
	}
}

func readReport(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

// sameJSON compares decoded JSON: the same keys at every level and the
// same values, numbers within 1e-4 relative (the two front ends run the
// model on batches of different shapes, and BLAS sums in another order).
func sameJSON(t *testing.T, at string, got, want any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: %T, want an object", at, got)
			return
		}
		for k := range w {
			if _, ok := g[k]; !ok {
				t.Errorf("%s: the export lacks %q", at, k)
			}
		}
		for k, gv := range g {
			wv, ok := w[k]
			if !ok {
				t.Errorf("%s: the export has %q, explain does not", at, k)
				continue
			}
			sameJSON(t, at+"."+k, gv, wv)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			t.Errorf("%s: %v, want %v", at, got, want)
			return
		}
		for i := range w {
			sameJSON(t, at+"["+strconv.Itoa(i)+"]", g[i], w[i])
		}
	case float64:
		g, ok := got.(float64)
		if !ok || math.Abs(g-w) > 1e-4*max(1, math.Abs(w)) {
			t.Errorf("%s: %v, want %v", at, got, want)
		}
	default:
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", at, got, want)
		}
	}
}

// mustStartLayer parses a start layer the test names.
func mustStartLayer(t *testing.T, s string) explain.StartLayer {
	t.Helper()
	l, err := explain.ParseStartLayer(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
