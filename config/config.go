// Package config holds lavascope's one typed configuration and loads it from, in
// rising precedence, defaults, a YAML file, LAVASCOPE_* environment variables and
// command-line flags. Every unknown key and bad value is reported with where it
// came from (file and key, variable, or flag), so a typo never silently falls back
// to a default.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cast"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Config is every setting that more than one command reads.
type Config struct {
	// TorchLib is the path of liblavascope_torch.so; empty means search the
	// default places (beside the executable, then ./build/).
	TorchLib string
	// Device is auto, cpu, cuda or cuda:N.
	Device string
	// Threads caps libtorch's CPU threads; 0 leaves libtorch's default.
	Threads int
	// Checkpoint is a Hugging Face CLIP folder, a model id in the HF cache,
	// a torch.save state_dict file (.pt, .pth, .bin), or "demo".
	Checkpoint string
	// Base gives a torch.save checkpoint its config.json and tokenizer: a
	// folder or model id; empty means the folder that holds the file.
	Base string
	// Data is a manifest (JSONL) or "demo".
	Data string
	// Graphics is how images reach the terminal: auto, sixel, kitty, blocks or none.
	Graphics string
	// Colormap names the heatmap colours: jet, viridis, turbo or rdbu, the
	// names the explorer shows and exports write ("diverging", rdbu's
	// older name here, is read as rdbu).
	Colormap string
	// Method is the relevance method: chefer, rollout, attention or gradattn.
	Method string
	// StartLayer is last, all or a layer number.
	StartLayer string
	// StartLayerText is the text encoder's start layer when it differs
	// from StartLayer (the notebook's start_layer_text); empty: the same.
	StartLayerText string
	// CUDAGraphs is auto (the explorer replays explanations and fine-tuning
	// steps from CUDA graphs where the device and the shim have them) or off.
	CUDAGraphs string
	// TF32 lets CUDA's matrix products run in TF32 (the explorer and
	// train): faster, with logits and relevance about 1e-3 from float32.
	TF32 bool
	// File is the configuration file that was read, empty when none.
	File string
}

type key struct {
	name    string
	def     any
	usage   string
	check   func(string) error
	persist bool // offered as a flag on every command
	// aliases maps older names of a value to the one used everywhere now;
	// Load returns the latter.
	aliases map[string]string
}

var (
	devicePat = regexp.MustCompile(`^(auto|cpu|cuda(:[0-9]+)?)$`)
	layerPat  = regexp.MustCompile(`^(last|all|-?[0-9]+)$`)
	// optLayerPat is layerPat or nothing (not set).
	optLayerPat = regexp.MustCompile(`^(last|all|-?[0-9]+)?$`)
)

func oneOf(vals ...string) func(string) error {
	return func(s string) error {
		for _, v := range vals {
			if s == v {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", s, strings.Join(vals, ", "))
	}
}

func matches(re *regexp.Regexp, what string) func(string) error {
	return func(s string) error {
		if !re.MatchString(s) {
			return fmt.Errorf("%q is not %s", s, what)
		}
		return nil
	}
}

var keys = []key{
	{name: "torch_lib", def: "", usage: "path of liblavascope_torch.so, as built by make torch (default: beside the executable, then the build folder of the source tree it was built in)", persist: true},
	{name: "device", def: "auto", usage: "compute device: auto, cpu, cuda or cuda:N", check: matches(devicePat, "auto, cpu, cuda or cuda:N"), persist: true},
	{name: "threads", def: 0, usage: "CPU threads for libtorch (0 = libtorch's default)", persist: true},
	{name: "checkpoint", def: "demo", usage: "CLIP checkpoint: HF folder, HF cache model id, torch.save state_dict (.pt, .pth, .bin), or demo"},
	{name: "base", def: "", usage: "config.json and tokenizer of a .pt checkpoint: HF folder or HF cache model id (default: the .pt file's folder)"},
	{name: "data", def: "demo", usage: "pair manifest (JSONL) or demo"},
	{name: "graphics", def: "auto", usage: "terminal graphics: auto, sixel, kitty, blocks or none", check: oneOf("auto", "sixel", "kitty", "blocks", "none"), persist: true},
	{name: "colormap", def: "jet", usage: "heatmap colormap: jet, viridis, turbo or rdbu", check: oneOf("jet", "viridis", "turbo", "rdbu"), aliases: map[string]string{"diverging": "rdbu"}},
	{name: "method", def: "chefer", usage: "relevance method: chefer, rollout, attention or gradattn", check: oneOf("chefer", "rollout", "attention", "gradattn")},
	{name: "start_layer", def: "last", usage: "first layer of the relevance rule: last, all or a number (negative: from the end)", check: matches(layerPat, "last, all or a layer number")},
	{name: "start_layer_text", def: "", usage: "the text encoder's first layer of the relevance rule, if not start_layer's: last, all or a number", check: matches(optLayerPat, "last, all or a layer number")},
	{name: "cuda_graphs", def: "auto", usage: "explanations and fine-tuning steps replayed from CUDA graphs: auto (where the GPU and the shim have them) or off", check: oneOf("auto", "off")},
	{name: "tf32", def: false, usage: "TF32 matrix products on CUDA: faster; logits and relevance move by about 1e-3 (docs/performance.md)"},
}

func flagName(k string) string { return strings.ReplaceAll(k, "_", "-") }
func envName(k string) string  { return "LAVASCOPE_" + strings.ToUpper(k) }

// Loader binds flags and loads a Config; one per command line.
type Loader struct{}

// NewLoader returns a Loader.
func NewLoader() *Loader { return &Loader{} }

// BindPersistentFlags adds the flags that every command accepts.
func (l *Loader) BindPersistentFlags(fs *pflag.FlagSet) {
	for _, k := range keys {
		if k.persist {
			addFlag(fs, k)
		}
	}
}

// AddFlags adds the flags of the named keys to a command's own flag set, for
// settings only some commands take (checkpoint, data, method, ...).
func AddFlags(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		for _, k := range keys {
			if k.name == n {
				addFlag(fs, k)
			}
		}
	}
}

// keyAnnotation marks the flags addFlag made, so that Load reads those and
// not a command's own flag that happens to share a key's name (train's and
// bench's boolean --cuda-graphs beside the explorer's cuda_graphs).
const keyAnnotation = "lavascope-config-key"

func addFlag(fs *pflag.FlagSet, k key) {
	name := flagName(k.name)
	switch d := k.def.(type) {
	case int:
		fs.Var(&wholeFlag{n: d}, name, k.usage)
	case bool:
		fs.Bool(name, d, k.usage)
	default:
		fs.String(name, fmt.Sprint(d), k.usage)
	}
	// The flag was just added, so SetAnnotation cannot fail.
	_ = fs.SetAnnotation(name, keyAnnotation, []string{k.name})
}

// setByFlag returns the flag of key name when the command line set it.
func setByFlag(fs *pflag.FlagSet, name string) (*pflag.Flag, bool) {
	if fs == nil {
		return nil, false
	}
	f := fs.Lookup(flagName(name))
	if f == nil || !f.Changed || f.Annotations[keyAnnotation] == nil {
		return nil, false
	}
	return f, true
}

// DefaultFile is where the configuration file is looked for without --config.
func DefaultFile() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "lavascope", "config.yaml")
}

// Load reads the configuration. file is the --config value: when set it must
// exist; when empty, DefaultFile is read if present. fs holds the command's flags
// (may be nil). All problems are returned together.
func (l *Loader) Load(file string, fs *pflag.FlagSet) (*Config, error) {
	v := viper.New()
	for _, k := range keys {
		v.SetDefault(k.name, k.def)
	}
	explicit := file != ""
	if !explicit {
		file = DefaultFile()
	}
	var inFile map[string]bool
	if file != "" {
		if _, err := os.Stat(file); err == nil || explicit {
			fv := viper.New()
			fv.SetConfigFile(file)
			fv.SetConfigType("yaml")
			if err := fv.ReadInConfig(); err != nil {
				return nil, fmt.Errorf("config %s: %w", file, err)
			}
			written, err := scalars(file)
			if err != nil {
				return nil, err
			}
			inFile = map[string]bool{}
			var errs []error
			for _, k := range fv.AllKeys() {
				if !known(k) {
					errs = append(errs, fmt.Errorf("config %s: unknown key %q (known keys: %s)", file, k, knownList()))
					continue
				}
				inFile[k] = true
				if text, ok := written[k]; ok {
					v.Set(k, text)
				} else {
					v.Set(k, fv.Get(k))
				}
			}
			if len(errs) > 0 {
				return nil, errors.Join(errs...)
			}
		} else {
			file = ""
		}
	}
	// Env and flags go on top of the file values, which Set made overrides above:
	// apply them by hand so that the precedence stays flags > env > file > defaults.
	source := func(name string) string {
		if _, ok := setByFlag(fs, name); ok {
			return "flag --" + flagName(name)
		}
		// An empty variable counts as unset, as in a shell's ${X:-default}:
		// LAVASCOPE_DATA= used to make the data path "".
		if os.Getenv(envName(name)) != "" {
			return "environment variable " + envName(name)
		}
		if inFile[name] {
			return fmt.Sprintf("config %s: key %q", file, name)
		}
		return ""
	}
	raw := map[string]any{}
	for _, k := range keys {
		val := v.Get(k.name)
		if e := os.Getenv(envName(k.name)); e != "" {
			val = e
		}
		if f, ok := setByFlag(fs, k.name); ok {
			val = f.Value.String()
		}
		if s, ok := val.(string); ok && k.aliases[s] != "" {
			val = k.aliases[s]
		}
		raw[k.name] = val
	}
	var errs []error
	str := func(name string) string {
		s, err := cast.ToStringE(raw[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: not a string: %v", source(name), raw[name]))
		}
		return s
	}
	for _, k := range keys {
		if k.check == nil {
			continue
		}
		if err := k.check(str(k.name)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", source(k.name), err))
		}
	}
	threads, err := parseWhole(fmt.Sprint(raw["threads"]))
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: threads must be a whole number ≥ 0 in decimal, got %q: %w", source("threads"), fmt.Sprint(raw["threads"]), err))
	}
	var tf32 bool
	switch t := fmt.Sprint(raw["tf32"]); t {
	case "true", "false":
		tf32 = t == "true"
	default:
		errs = append(errs, fmt.Errorf("%s: tf32 must be true or false, got %q", source("tf32"), t))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c := &Config{
		TorchLib:   str("torch_lib"),
		Device:     str("device"),
		Threads:    threads,
		Checkpoint: str("checkpoint"),
		Base:       str("base"),
		Data:       str("data"),
		Graphics:   str("graphics"),
		Colormap:   str("colormap"),
		Method:     str("method"),
		StartLayer: str("start_layer"),
		CUDAGraphs: str("cuda_graphs"),
		TF32:       tf32,
		File:       file,
	}
	c.StartLayerText = str("start_layer_text")
	return c, nil
}

// parseWhole reads a whole number ≥ 0 in decimal digits only. YAML and
// Go's own parsers read 010 as 8, 0x10 as 16 and (cast) 1.5 as 1; a setting
// that does not mean what it looks like is refused instead.
func parseWhole(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%q is not a digit", r)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, errors.New("a leading 0 (YAML reads 010 as octal 8)")
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errors.New("too large")
	}
	return n, nil
}

// wholeFlag is a flag that takes what parseWhole takes (pflag's Int reads
// 010 as 8 and 0x10 as 16).
type wholeFlag struct{ n int }

func (f *wholeFlag) String() string { return strconv.Itoa(f.n) }
func (f *wholeFlag) Type() string   { return "int" }
func (f *wholeFlag) Set(s string) error {
	n, err := parseWhole(s)
	if err != nil {
		return fmt.Errorf("want a whole number ≥ 0 in decimal: %w", err)
	}
	f.n = n
	return nil
}

// scalars returns the top-level scalar values of the YAML file as written,
// so that settings are read by lavascope's rules rather than YAML's.
func scalars(file string) (map[string]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	out := map[string]string{}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return out, nil
	}
	m := doc.Content[0].Content
	for i := 0; i+1 < len(m); i += 2 {
		if v := m[i+1]; v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
			out[strings.ToLower(m[i].Value)] = v.Value
		}
	}
	return out, nil
}

func known(k string) bool {
	for _, kk := range keys {
		if kk.name == k {
			return true
		}
	}
	return false
}

func knownList() string {
	var names []string
	for _, k := range keys {
		names = append(names, k.name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
