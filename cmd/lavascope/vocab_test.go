package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/tui"
)

// TestFlagVocabulary: the commands that take --target and --colormap name
// the same values in their help as the explorer shows (package tui's
// targets, package explain's colormaps), and refuse the README's old
// "both".
func TestFlagVocabulary(t *testing.T) {
	var targets []string
	for _, tg := range tui.Targets {
		targets = append(targets, tg.String())
	}
	want := map[string][]string{"target": targets, "colormap": explain.ColormapNames()}
	root := newRootCmd()
	for _, name := range []string{"explore", "explain"} {
		c, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		for flag, values := range want {
			f := c.Flags().Lookup(flag)
			if f == nil {
				t.Fatalf("%s has no --%s", name, flag)
			}
			_, list, _ := strings.Cut(f.Usage, ": ")
			if got := regexp.MustCompile(`, | or `).Split(list, -1); !slices.Equal(got, values) {
				t.Errorf("%s --%s: help names %v, want %v", name, flag, got, values)
			}
		}
		args := []string{name, "--target", "both"}
		if name == "explain" {
			args = append(args, "--out", t.TempDir())
		}
		_, stderr, code := runCLI(t, "", args...)
		if code != factory.ExitUsage || !strings.Contains(stderr, "own, twin or all") {
			t.Errorf("%s --target both: exit %d, %q", name, code, stderr)
		}
	}
}
