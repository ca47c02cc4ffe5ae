package config

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	NewLoader().BindPersistentFlags(fs)
	AddFlags(fs, "checkpoint", "data", "method")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestPrecedence(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	file := writeFile(t, "device: cpu\nthreads: 3\nmethod: rollout\ncheckpoint: /ckpt\n")
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		file   string
		device string
		thr    int
		method string
		ckpt   string
	}{
		{name: "defaults", device: "auto", thr: 0, method: "chefer", ckpt: "demo"},
		{name: "file", file: file, device: "cpu", thr: 3, method: "rollout", ckpt: "/ckpt"},
		{name: "env over file", file: file, env: map[string]string{"LAVASCOPE_DEVICE": "cuda:1", "LAVASCOPE_THREADS": "2"}, device: "cuda:1", thr: 2, method: "rollout", ckpt: "/ckpt"},
		{name: "flag over env", file: file, env: map[string]string{"LAVASCOPE_DEVICE": "cuda:1"}, args: []string{"--device", "cuda", "--method", "attention"}, device: "cuda", thr: 3, method: "attention", ckpt: "/ckpt"},
		{name: "unchanged flag does not override file", file: file, args: []string{"--data", "x.jsonl"}, device: "cpu", thr: 3, method: "rollout", ckpt: "/ckpt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := NewLoader().Load(tc.file, flags(t, tc.args...))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Device != tc.device || cfg.Threads != tc.thr || cfg.Method != tc.method || cfg.Checkpoint != tc.ckpt {
				t.Errorf("got device=%q threads=%d method=%q checkpoint=%q, want %q %d %q %q",
					cfg.Device, cfg.Threads, cfg.Method, cfg.Checkpoint, tc.device, tc.thr, tc.method, tc.ckpt)
			}
		})
	}
}

// TestOwnFlagIsNotAKey: a command's own flag named like a key it does not
// take (bench's and train's boolean --cuda-graphs) is that command's, not
// the key's: set, it neither fails the key's check nor overrides the key.
func TestOwnFlagIsNotAKey(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LAVASCOPE_CUDA_GRAPHS", "off")
	fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	NewLoader().BindPersistentFlags(fs)
	graphs := fs.Bool("cuda-graphs", false, "")
	if err := fs.Parse([]string{"--cuda-graphs"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := NewLoader().Load("", fs)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !*graphs || cfg.CUDAGraphs != "off" {
		t.Errorf("--cuda-graphs %v, cuda_graphs %q; want true and the environment's off", *graphs, cfg.CUDAGraphs)
	}
}

// TestTF32 reads the boolean key from each source, flags over the file.
func TestTF32(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	on := writeFile(t, "tf32: true\n")
	for _, tc := range []struct {
		name string
		file string
		env  string
		args []string
		want bool
	}{
		{name: "default", want: false},
		{name: "file", file: on, want: true},
		{name: "env", env: "true", want: true},
		{name: "flag", args: []string{"--tf32"}, want: true},
		{name: "flag over file", file: on, args: []string{"--tf32=false"}, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("LAVASCOPE_TF32", tc.env)
			}
			fs := pflag.NewFlagSet("explore", pflag.ContinueOnError)
			AddFlags(fs, "tf32")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := NewLoader().Load(tc.file, fs)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.TF32 != tc.want {
				t.Errorf("TF32 = %v, want %v", cfg.TF32, tc.want)
			}
		})
	}
}

func TestDefaultFileIsRead(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	if err := os.MkdirAll(filepath.Join(dir, "lavascope"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lavascope", "config.yaml"), []byte("graphics: blocks\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := NewLoader().Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Graphics != "blocks" || cfg.File == "" {
		t.Errorf("graphics=%q file=%q, want blocks from the default file", cfg.Graphics, cfg.File)
	}
}

func TestErrors(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	tests := []struct {
		name string
		file string
		env  map[string]string
		args []string
		want []string
	}{
		{name: "unknown key", file: "devise: cpu\n", want: []string{"config.yaml", `unknown key "devise"`, "known keys"}},
		{name: "bad value in file", file: "graphics: hologram\n", want: []string{"config.yaml", `key "graphics"`, `"hologram" is not one of`}},
		{name: "bad threads in file", file: "threads: many\n", want: []string{`key "threads"`, "whole number"}},
		{name: "negative threads", file: "threads: -2\n", want: []string{`key "threads"`}},
		{name: "bad env", env: map[string]string{"LAVASCOPE_DEVICE": "tpu"}, want: []string{"LAVASCOPE_DEVICE", `"tpu"`}},
		{name: "bad flag", args: []string{"--start-layer", "first"}, want: []string{"flag --start-layer", "last, all or a layer number"}},
		{name: "bad text start layer", file: "start_layer_text: first\n", want: []string{`key "start_layer_text"`, "last, all or a layer number"}},
		{name: "two problems at once", file: "colormap: rainbow\nmethod: magic\n", want: []string{`key "colormap"`, `key "method"`}},
		{name: "cuda graphs", file: "cuda_graphs: maybe\n", want: []string{`key "cuda_graphs"`, `"maybe" is not one of auto, off`}},
		{name: "tf32 in env", env: map[string]string{"LAVASCOPE_TF32": "maybe"}, want: []string{"LAVASCOPE_TF32", "true or false", "maybe"}},
		{name: "not yaml", file: "device: [cpu\n", want: []string{"config.yaml"}},
		{name: "octal-looking threads", file: "threads: 010\n", want: []string{`key "threads"`, `"010"`, "leading 0"}},
		{name: "fractional threads", file: "threads: 1.5\n", want: []string{`key "threads"`, `"1.5"`}},
		{name: "hex threads", file: "threads: 0x10\n", want: []string{`key "threads"`, `"0x10"`}},
		{name: "octal threads in env", env: map[string]string{"LAVASCOPE_THREADS": "010"}, want: []string{"LAVASCOPE_THREADS", "leading 0"}},
		{name: "tf32 as a number", file: "tf32: 1\n", want: []string{`key "tf32"`, "true or false"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			path := ""
			if tc.file != "" {
				path = writeFile(t, tc.file)
			}
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			NewLoader().BindPersistentFlags(fs)
			AddFlags(fs, "start_layer")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			_, err := NewLoader().Load(path, fs)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestStrictFlagsAndEmptyEnv: --threads reads decimal only (pflag's Int
// read 010 as 8), and an empty variable counts as unset (LAVASCOPE_DATA=
// gave "open : no such file").
func TestStrictFlagsAndEmptyEnv(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	for _, arg := range []string{"010", "0x10", "1.5", "-1"} {
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		NewLoader().BindPersistentFlags(fs)
		if err := fs.Parse([]string{"--threads", arg}); err == nil {
			t.Errorf("--threads %s accepted", arg)
		}
	}
	t.Setenv("LAVASCOPE_DATA", "")
	t.Setenv("LAVASCOPE_THREADS", "")
	cfg, err := NewLoader().Load("", flags(t, "--threads", "12"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Data != "demo" || cfg.Threads != 12 {
		t.Errorf("data %q threads %d, want the default demo and the flag's 12", cfg.Data, cfg.Threads)
	}
}

func TestMissingExplicitFile(t *testing.T) {
	_, err := NewLoader().Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("got %v, want an error naming nope.yaml", err)
	}
}

// FuzzParseWhole: what parseWhole accepts is exactly the decimal writing
// of the number it returns.
func FuzzParseWhole(f *testing.F) {
	for _, s := range []string{"0", "8", "010", "0x10", "1.5", "-1", "+3", " 4", "99999999999999999999", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseWhole(s)
		if err != nil {
			return
		}
		if n < 0 || strconv.Itoa(n) != s {
			t.Errorf("parseWhole(%q) = %d", s, n)
		}
	})
}

// TestColormapAlias: "diverging", rdbu's older name in the configuration,
// loads as rdbu from the file, the environment and a flag, so that every
// later reader sees the one name.
func TestColormapAlias(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	withFlag := func(args ...string) *pflag.FlagSet {
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		AddFlags(fs, "colormap")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return fs
	}
	for _, tc := range []struct {
		name, file, env string
		args            []string
		want            string
	}{
		{name: "file", file: "colormap: diverging\n", want: "rdbu"},
		{name: "env", env: "diverging", want: "rdbu"},
		{name: "flag", args: []string{"--colormap", "diverging"}, want: "rdbu"},
		{name: "canonical", file: "colormap: rdbu\n", want: "rdbu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("LAVASCOPE_COLORMAP", tc.env)
			}
			file := ""
			if tc.file != "" {
				file = writeFile(t, tc.file)
			}
			cfg, err := NewLoader().Load(file, withFlag(tc.args...))
			if err != nil || cfg.Colormap != tc.want {
				t.Errorf("colormap %+v, %v; want %q", cfg, err, tc.want)
			}
		})
	}
	if _, err := NewLoader().Load(writeFile(t, "colormap: RdBu_r\n"), nil); err == nil || !strings.Contains(err.Error(), "jet, viridis, turbo, rdbu") {
		t.Errorf("an unknown colormap: %v, want an error listing the names", err)
	}
}
