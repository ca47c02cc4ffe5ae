package tui_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/spf13/pflag"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/tui"
	"github.com/lavascope/lavascope/tui/graphics"
)

// flagWords lists the values a flag's help names ("…: a, b, c or d").
func flagWords(t *testing.T, fs *pflag.FlagSet, name string) []string {
	t.Helper()
	f := fs.Lookup(name)
	if f == nil {
		t.Fatalf("no flag --%s", name)
	}
	_, list, ok := strings.Cut(f.Usage, ": ")
	if !ok {
		t.Fatalf("--%s: help %q lists no values", name, f.Usage)
	}
	return regexp.MustCompile(`, | or `).Split(list, -1)
}

// loadConfig loads the configuration from a file holding body and a
// command line of the explorer's flags.
func loadConfig(t *testing.T, body string, args ...string) *config.Config {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("explore", pflag.ContinueOnError)
	config.NewLoader().BindPersistentFlags(fs)
	config.AddFlags(fs, "colormap", "method")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.NewLoader().Load(file, fs)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// statusWords splits the pair view's status line into its items.
func statusWords(view string) []string {
	lines := strings.Split(ansi.Strip(view), "\n")
	return strings.Split(strings.TrimSpace(lines[len(lines)-2]), " · ")
}

// exported presses e and returns the report the explorer wrote for the
// first reading.
func exported(t *testing.T, h *harness, dir string) map[string]any {
	t.Helper()
	h.keys("e")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 2 || !strings.HasSuffix(files[0], "-r0.json") {
		t.Fatalf("export wrote %v, want a report per reading", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	return doc
}

// TestColormapVocabulary: each colormap has one name, the same in the
// --colormap help, on the command line, in the config file, on the screen
// (where c cycles through them all) and in the exported JSON.
func TestColormapVocabulary(t *testing.T) {
	names := explain.ColormapNames()
	fs := pflag.NewFlagSet("explore", pflag.ContinueOnError)
	config.AddFlags(fs, "colormap")
	if help := flagWords(t, fs, "colormap"); !slices.Equal(help, names) {
		t.Errorf("--colormap help names %v, the colormaps are %v", help, names)
	}
	var cycled []string
	for _, name := range names {
		if got := loadConfig(t, "", "--colormap", name).Colormap; got != name {
			t.Errorf("--colormap %s loads as %q", name, got)
		}
		cfg := loadConfig(t, "colormap: "+name+"\n")
		if cfg.Colormap != name {
			t.Errorf("colormap: %s in the config loads as %q", name, cfg.Colormap)
		}
		dir := t.TempDir()
		h := newHarness(t, options{w: 160, h: 48, colormap: cfg.Colormap, exportDir: dir})
		h.keys("enter")
		if words := statusWords(h.view()); !slices.Contains(words, name) {
			t.Errorf("colormap %s: the status line shows %v", name, words)
		}
		if doc := exported(t, h, dir); doc["colormap"] != name {
			t.Errorf("colormap %s: the export says %v", name, doc["colormap"])
		}
		h.keys("c")
		for _, w := range statusWords(h.view()) {
			if slices.Contains(names, w) {
				cycled = append(cycled, w)
			}
		}
	}
	slices.Sort(cycled)
	if want := slices.Sorted(slices.Values(names)); !slices.Equal(cycled, want) {
		t.Errorf("c shows %v, want each of %v once", cycled, want)
	}
	// The name the configuration used to have for rdbu still loads, as rdbu.
	if got := loadConfig(t, "colormap: diverging\n").Colormap; got != explain.RdBu.Name() {
		t.Errorf("colormap: diverging loads as %q, want %q", got, explain.RdBu.Name())
	}
}

// TestTargetVocabulary: each target has one name, the same for --target,
// on the screen (status line and image captions, cycled by t) and in the
// exported JSON.
func TestTargetVocabulary(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, options{w: 160, h: 48, exportDir: dir})
	h.keys("enter")
	var names []string
	for _, target := range tui.Targets {
		name := target.String()
		names = append(names, name)
		if got, err := tui.ParseTarget(name); err != nil || got != target {
			t.Errorf("--target %s parses as %v, %v", name, got, err)
		}
		view := ansi.Strip(h.view())
		if words := statusWords(view); !slices.Contains(words, "target "+name) {
			t.Errorf("target %s: the status line shows %v", name, words)
		}
		if !strings.Contains(view, "· "+name+" target") {
			t.Errorf("target %s: no image caption names it:\n%s", name, view)
		}
		if doc := exported(t, h, dir); doc["target"] != name {
			t.Errorf("target %s: the export says %v", name, doc["target"])
		}
		h.keys("t")
	}
	if _, err := tui.ParseTarget("both"); err == nil {
		t.Error("--target both is accepted beside all")
	}
	if !slices.Equal(names, []string{"own", "twin", "all"}) {
		t.Errorf("targets %v; the README and the commands' help say own, twin, all", names)
	}
}

// TestMethodAndGraphicsVocabulary: the values the --method and --graphics
// help lists are those of package explain and package graphics.
func TestMethodAndGraphicsVocabulary(t *testing.T) {
	fs := pflag.NewFlagSet("explore", pflag.ContinueOnError)
	config.NewLoader().BindPersistentFlags(fs)
	config.AddFlags(fs, "method")
	var methods []string
	for _, m := range explain.Methods {
		methods = append(methods, string(m))
		if got := loadConfig(t, "method: "+string(m)+"\n").Method; got != string(m) {
			t.Errorf("method: %s loads as %q", m, got)
		}
	}
	if help := flagWords(t, fs, "method"); !slices.Equal(help, methods) {
		t.Errorf("--method help names %v, the methods are %v", help, methods)
	}
	var modes []string
	for _, m := range []graphics.Mode{graphics.Auto, graphics.Sixel, graphics.Kitty, graphics.Blocks, graphics.None} {
		modes = append(modes, m.String())
		if p, err := graphics.ParseMode(m.String()); err != nil || p != m {
			t.Errorf("graphics mode %s parses as %v, %v", m, p, err)
		}
	}
	if help := flagWords(t, fs, "graphics"); !slices.Equal(help, modes) {
		t.Errorf("--graphics help names %v, the modes are %v", help, modes)
	}
}

// TestStartLayerVocabulary: the start layer is called so on the screen, as
// in the help (l), the --start-layer flag and the export's start_layer,
// with the same values.
func TestStartLayerVocabulary(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, options{w: 160, h: 48, exportDir: dir})
	h.keys("enter")
	for _, layer := range []string{"last", "all"} {
		if words := statusWords(h.view()); !slices.Contains(words, "start layer "+layer) {
			t.Errorf("start layer %s: the status line shows %v", layer, words)
		}
		if doc := exported(t, h, dir); doc["start_layer"] != layer {
			t.Errorf("start layer %s: the export says %v", layer, doc["start_layer"])
		}
		h.keys("l")
	}
	if !strings.Contains(ansi.Strip(h.view()), "l start layer") {
		t.Errorf("the hint bar does not call l the start layer:\n%s", ansi.Strip(h.view()))
	}
}
