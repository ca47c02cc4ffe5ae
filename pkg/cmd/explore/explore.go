// Package explore is `lavascope explore`, also the bare command: the
// explorer on a checkpoint and a split, or on the embedded demo.
package explore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/tui"
	"github.com/lavascope/lavascope/tui/enginetest"
	"github.com/lavascope/lavascope/tui/graphics"
	"github.com/lavascope/lavascope/tui/torchengine"
)

// exploreData is the dataset of an explorer session: the split shown,
// loaded before the first frame, and the train and val splits that
// fine-tuning uses, which the engine opens in the background.
type exploreData struct {
	shown  *loader.Dataset
	splits func() (train, val model.Split, err error)
}

// engineOpener makes the function with which the explorer opens its engine,
// in the background.
type engineOpener func(a *factory.Factory, data exploreData, flags exploreFlags) func(context.Context) (tui.Engine, error)

// engineOpeners are the engines --engine can name.
var engineOpeners = map[string]engineOpener{
	"torch": torchEngine,
	"fake": func(_ *factory.Factory, data exploreData, f exploreFlags) func(context.Context) (tui.Engine, error) {
		return func(context.Context) (tui.Engine, error) {
			return enginetest.New(data.shown, enginetest.Options{Delay: f.fakeDelay, StepDelay: f.fakeDelay}), nil
		}
	},
}

// DemoData is the synthetic dataset that --data demo names: generated in
// memory, the same pairs every time, and the same test split that
// `lavascope eval --data demo` scores (synth.Demo without its split filter).
var DemoData = func() synth.Config {
	c := synth.Demo()
	c.Split = ""
	return c
}()

type exploreFlags struct {
	split, target, exportDir, engine string
	saveEdits                        string
	fakeDelay                        time.Duration
	allowOutside                     bool
	showKeys                         bool
	// textStart is start_layer_text, parsed by runExplore; nil: the
	// image's start layer.
	textStart *explain.StartLayer
}

// NewCmdExplore builds `lavascope explore`.
func NewCmdExplore(a *factory.Factory) *cobra.Command {
	{
		var f exploreFlags
		cmd := &cobra.Command{
			Use:   "explore [--checkpoint DIR] [--data FILE]",
			Short: "Step through pairs and see where the model looked (the default command)",
			Long: `explore opens the explorer: the pairs of a split with which image each reading
picks, and for each pair both readings side by side, with the parse trees and
their linearization painted by token relevance and the images by patch
relevance. Keys are listed by ? inside; q quits.

Images are drawn with sixel, the kitty graphics protocol or half-blocks, as
--graphics says (auto asks the terminal).`,
			Example: `  lavascope explore
  lavascope explore --checkpoint ckpt/best --data data/lava/pairs.jsonl --split test
  lavascope explore --graphics blocks --colormap viridis`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runExplore(cmd.Context(), a, f)
			},
		}
		fs := cmd.Flags()
		config.AddFlags(fs, "checkpoint", "base", "data", "colormap", "method", "start_layer", "start_layer_text", "cuda_graphs", "tf32")
		fs.StringVar(&f.split, "split", loader.SplitTest, "split to show: train, val, test, or all")
		fs.StringVar(&f.target, "target", "own", "logit to explain for each reading: own, twin or all")
		fs.StringVar(&f.exportDir, "export-dir", "", "folder that e writes figures (PNG, SVG) and reports into (default $XDG_DATA_HOME/lavascope/exports, or ~/.local/share/lavascope/exports)")
		fs.StringVar(&f.engine, "engine", "torch", "model engine: torch, or fake for tests without libtorch")
		fs.DurationVar(&f.fakeDelay, "fake-delay", 0, "how long each call of the fake engine takes")
		fs.BoolVar(&f.allowOutside, "allow-outside", false, "accept images outside the manifest's folder (by path or symbolic link)")
		fs.StringVar(&f.saveEdits, "save-edits", "", "append the pairs whose trees were edited (E) to this manifest on quit, as new pairs (never the --data manifest)")
		fs.BoolVar(&f.showKeys, "show-keys", false, "show each key pressed in the hint bar (for screencasts)")
		_ = fs.MarkHidden("engine")
		_ = fs.MarkHidden("fake-delay")
		return cmd
	}
}

// RunDefault is what the bare command does: the explorer on the embedded demo.
func RunDefault(a *factory.Factory, cmd *cobra.Command, _ []string) error {
	return runExplore(cmd.Context(), a, exploreFlags{split: loader.SplitTest, target: "own", engine: "torch"})
}

func runExplore(ctx context.Context, a *factory.Factory, f exploreFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	opener, ok := engineOpeners[f.engine]
	if !ok {
		var names []string
		for n := range engineOpeners {
			names = append(names, n)
		}
		slices.Sort(names)
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("engine %q is not available in this build (have: %s)", f.engine, strings.Join(names, ", ")))
	}
	target, err := tui.ParseTarget(f.target)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--target: %w", err))
	}
	if f.exportDir == "" {
		if f.exportDir, err = defaultExportDir(os.Getenv, os.UserHomeDir); err != nil {
			return factory.WithExit(factory.ExitUsage, err)
		}
	}
	// The explanation settings are parsed here, where they enter, and
	// travel typed from here on.
	start, err := explain.ParseStartLayer(a.Config.StartLayer)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("start_layer: %w", err))
	}
	if a.Config.StartLayerText != "" {
		ts, err := explain.ParseStartLayer(a.Config.StartLayerText)
		if err != nil {
			return factory.WithExit(factory.ExitUsage, fmt.Errorf("start_layer_text: %w", err))
		}
		f.textStart = &ts
	}
	method, err := explain.ParseMethod(a.Config.Method)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("method: %w", err))
	}
	var cmap *explain.Colormap
	if a.Config.Colormap != "" {
		if cmap, err = explain.ColormapNamed(a.Config.Colormap); err != nil {
			return factory.WithExit(factory.ExitUsage, fmt.Errorf("colormap: %w", err))
		}
	}
	split := f.split
	switch split {
	case "all":
		split = ""
	case loader.SplitTrain, loader.SplitVal, loader.SplitTest:
	default:
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--split: %q is not one of train, val, test, all", f.split))
	}
	data, err := loadData(a.Config.Data, split, loader.Options{AllowOutside: f.allowOutside})
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	manifest := ""
	if a.Config.Data != demo.Name {
		manifest = a.Config.Data
	}
	if f.saveEdits != "" {
		if err := tui.CheckSaveEdits(f.saveEdits, manifest); err != nil {
			return factory.WithExit(factory.ExitUsage, err)
		}
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) || !term.IsTerminal(int(os.Stdout.Fd())) {
		return factory.WithExit(factory.ExitUsage, errors.New("the explorer needs a terminal: standard input and output are not one (over SSH use ssh -t; in scripts use lavascope eval or lavascope explain)"))
	}
	ds := data.shown
	if len(ds.Pairs) == 0 {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("%s has no pairs in split %q", a.Config.Data, f.split))
	}
	mode, err := graphics.ParseMode(a.Config.Graphics)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	caps, note := graphics.Capabilities{Mode: mode}, ""
	switch mode {
	case graphics.Auto:
		caps = graphics.DetectTerminal()
	case graphics.Sixel, graphics.Kitty:
		// Pixel images are sized in cells, so a forced mode still needs the
		// terminal's cell size, which detection measures; detection also
		// says whether a multiplexer lets the images through.
		caps = graphics.DetectTerminal()
		caps.Mode, note = graphics.Multiplexed(mode, caps, os.Getenv)
	default:
		caps.Colour = graphics.TerminalColour()
	}
	// Bubble Tea would drop to 256 colours under TERM=tmux-* whatever
	// COLORTERM says; graphics decides with tmux's own answer too.
	var progOpts []tea.ProgramOption
	if caps.Colour.TrueColor {
		progOpts = append(progOpts, tea.WithColorProfile(colorprofile.TrueColor))
	}
	opt := tui.Options{
		Data: ds, Split: split, DataName: a.Config.Data,
		Open:     opener(a, data, f),
		Graphics: caps.Mode, CellWidth: caps.CellWidth, CellHeight: caps.CellHeight, GraphicsNote: note,
		Colormap: cmap, Method: method, StartLayer: start, Target: target,
		ExportDir: f.exportDir, ShowKeys: f.showKeys,
		SaveEdits: f.saveEdits, Manifest: manifest,
		Saved: func(n int) {
			if n > 0 {
				fmt.Fprintf(os.Stderr, "saved %d edited pair(s) to %s\n", n, f.saveEdits)
			}
		},
	}
	if err := tui.Run(ctx, opt, progOpts...); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// defaultExportDir is where e writes when --export-dir is not given: the
// user's data folder of the XDG base directories, never the working
// directory, which is often a source tree.
func defaultExportDir(getenv func(string) string, home func() (string, error)) (string, error) {
	// The specification ignores a relative XDG_DATA_HOME.
	if d := getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "lavascope", "exports"), nil
	}
	h, err := home()
	if err != nil || !filepath.IsAbs(h) {
		return "", fmt.Errorf("no folder for exports: neither $XDG_DATA_HOME nor $HOME is an absolute path; give --export-dir")
	}
	return filepath.Join(h, ".local", "share", "lavascope", "exports"), nil
}

// loadData reads the manifest at path, or generates the demo pairs,
// keeping the pairs of split ("" for all) for display.
func loadData(path, split string, opts loader.Options) (exploreData, error) {
	if path == demo.Name {
		cfg := DemoData
		cfg.Split = split
		pairs, err := synth.Generate(cfg)
		if err != nil {
			return exploreData{}, fmt.Errorf("demo data: %w", err)
		}
		// The demo's own splits draw each pair when asked for it, so that
		// fine-tuning does not hold a thousand pairs of images in memory.
		splits := func() (model.Split, model.Split, error) {
			train, err := demo.Split(loader.SplitTrain)
			if err != nil {
				return nil, nil, err
			}
			val, err := demo.Split(loader.SplitVal)
			if err != nil {
				return nil, nil, err
			}
			return train, val, nil
		}
		return exploreData{shown: &loader.Dataset{Pairs: pairs}, splits: splits}, nil
	}
	if _, err := os.Stat(path); err != nil {
		return exploreData{}, fmt.Errorf("--data: %w", err)
	}
	ds, err := loader.Load(path, opts)
	if err != nil {
		return exploreData{}, err
	}
	return exploreData{
		shown: ds.Split(split),
		splits: func() (model.Split, model.Split, error) {
			return model.DatasetSplit(ds, loader.SplitTrain), model.DatasetSplit(ds, loader.SplitVal), nil
		},
	}, nil
}

// torchEngine opens the libtorch engine: the explorer's default.
func torchEngine(a *factory.Factory, data exploreData, f exploreFlags) func(context.Context) (tui.Engine, error) {
	{
		return func(ctx context.Context) (tui.Engine, error) {
			o := torchengine.Options{
				Checkpoint: a.Config.Checkpoint, Base: a.Config.Base, Device: a.Config.Device, TorchLib: a.Config.TorchLib, Threads: a.Config.Threads,
				Data: data.shown, DataName: a.Config.Data, NoGraphs: a.Config.CUDAGraphs == "off", TF32: a.Config.TF32,
				StartLayerText: f.textStart,
			}
			var err error
			if o.Train, o.Val, err = data.splits(); err != nil {
				return nil, err
			}
			e, err := torchengine.Open(ctx, o)
			if err != nil {
				return nil, err
			}
			return e, nil
		}
	}
}
