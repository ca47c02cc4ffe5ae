package version_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

// TestVersionFlag: --version and -v print what `lavascope version` prints,
// also with a config file that does not parse (it is not read).
func TestVersionFlag(t *testing.T) {
	want, stderr, code := cmdtest.RunCLI(t, "", "version")
	if code != 0 || !strings.HasPrefix(want, "lavascope ") || strings.Count(want, "\n") != 1 {
		t.Fatalf("version: exit %d, %q %s", code, want, stderr)
	}
	bad := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(bad, []byte("threads: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--version"}, {"-v"}, {"--config", bad, "--version"}} {
		got, stderr, code := cmdtest.RunCLI(t, "", args...)
		if code != 0 || got != want {
			t.Errorf("%v: exit %d, %q %s; want %q", args, code, got, stderr, want)
		}
	}
}
