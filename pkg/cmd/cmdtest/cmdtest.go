// Package cmdtest runs lavascope's command tree from the tests of pkg/cmd
// and cmd/lavascope, as the user's shell would, and reads what it wrote.
package cmdtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/model/safetensors"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/pkg/cmd/root"
)

// PPA and PPB are the two readings of a prepositional-phrase attachment:
// the bag goes with Danny (PPA) or with the chair (PPB).
const (
	PPA = "(S (NP (NNP Danny)) (VP (VBD approached) (NP (DT the) (JJ green) (NN chair)) (PP (IN with) (NP (DT a) (JJ yellow) (NN bag)))) (. .))"
	PPB = "(S (NP (NNP Danny)) (VP (VBD approached) (NP (NP (DT the) (JJ green) (NN chair)) (PP (IN with) (NP (DT a) (JJ yellow) (NN bag))))) (. .))"
)

// Root is the command tree of pkg/cmd: every command but cmd/lavascope's
// explore and explain.
func Root() *cobra.Command { return root.NewCmdRoot(factory.New(), nil) }

// Run runs args on Root and gives the exit status, as lavascope's main does.
func Run(args []string) int { return root.Execute(Root(), args, os.Stderr) }

// RunCLI runs args on Root; see RunWith.
func RunCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return RunWith(t, Root(), stdin, args...)
}

// RunWith runs the command line on root with stdin, stdout and stderr
// redirected to files, and returns what it wrote and its exit status.
func RunWith(t *testing.T, cmd *cobra.Command, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir := t.TempDir()
	open := func(name, content string) *os.File {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	in, out, errf := open("stdin", stdin), open("stdout", ""), open("stderr", "")
	oldIn, oldOut, oldErr := os.Stdin, os.Stdout, os.Stderr
	os.Stdin, os.Stdout, os.Stderr = in, out, errf
	defer func() {
		os.Stdin, os.Stdout, os.Stderr = oldIn, oldOut, oldErr
		in.Close()
		out.Close()
		errf.Close()
	}()
	code = root.Execute(cmd, args, os.Stderr)
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	return string(o), string(e), code
}

// ReadF32s reads every float tensor of a safetensors file as float32s.
func ReadF32s(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	st, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := map[string][]float32{}
	for _, ti := range st.Tensors() {
		if ti.DType.IsFloat() {
			if out[ti.Name], err = st.Float32s(ti.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}
