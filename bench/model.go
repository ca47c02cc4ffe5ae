package bench

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lavascope/lavascope/model"
)

// OpenModel returns the model to time: a built-in config (vit-b-32,
// tiny) or a config.json, randomly initialised from seed; or a checkpoint
// folder (or HF model id) loaded. A folder with a config.json but no
// weights is initialised from its config, with a notice: timings depend on
// the shapes only. Call it on the model's torch worker.
func OpenModel(arg string, o model.Options, seed uint64) (m *model.CLIP, notice string, err error) {
	if slices.Contains(model.ConfigNames, arg) {
		cfg, err := model.NamedConfig(arg)
		if err != nil {
			return nil, "", err
		}
		m, err := model.Init(cfg, o, seed)
		return m, "", err
	}
	st, err := os.Stat(arg)
	switch {
	case err == nil && !st.IsDir():
		cfg, err := model.ReadConfig(arg)
		if err != nil {
			return nil, "", err
		}
		m, err := model.Init(cfg, o, seed)
		return m, "", err
	case err == nil && noWeights(arg):
		path := filepath.Join(arg, "config.json")
		cfg, err := model.ReadConfig(path)
		if err != nil {
			return nil, "", err
		}
		m, err := model.Init(cfg, o, seed)
		return m, arg + " has no model.safetensors: timing a random model of its config.json", err
	}
	m, err = model.Load(arg, o)
	return m, "", err
}

// noWeights reports whether dir holds a config.json and no weights.
func noWeights(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, "model.safetensors"))
	return os.IsNotExist(err)
}

// CPUName is the processor's model name from /proc/cpuinfo, or "cpu".
func CPUName() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "cpu"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "cpu"
}
