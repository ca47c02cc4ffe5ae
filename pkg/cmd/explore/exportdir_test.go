package explore

import (
	"errors"
	"testing"
)

// TestDefaultExportDir: e writes under the XDG data folder, or
// ~/.local/share without one, and never into the working directory.
func TestDefaultExportDir(t *testing.T) {
	home := func() (string, error) { return "/home/ana", nil }
	for _, c := range []struct {
		xdg, want string
		home      func() (string, error)
	}{
		{"/data/ana", "/data/ana/lavascope/exports", home},
		{"", "/home/ana/.local/share/lavascope/exports", home},
		{"relative/share", "/home/ana/.local/share/lavascope/exports", home},
		{"", "", func() (string, error) { return "", errors.New("$HOME is not defined") }},
		{"", "", func() (string, error) { return ".", nil }},
	} {
		got, err := defaultExportDir(func(k string) string {
			if k == "XDG_DATA_HOME" {
				return c.xdg
			}
			return ""
		}, c.home)
		if got != c.want || (err == nil) != (c.want != "") {
			t.Errorf("XDG_DATA_HOME=%q: %q, %v; want %q", c.xdg, got, err, c.want)
		}
	}
}
