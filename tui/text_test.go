package tui

import "testing"

func TestCleanLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"no shim:\n  tried ./build/x.so\n  run make torch", "no shim: tried ./build/x.so run make torch"},
		{"tab\tand  spaces", "tab and spaces"},
		{"escape \x1b[31mred", `escape \x1b[31mred`},
		{"", ""},
	}
	for _, tc := range tests {
		if got := cleanLine(tc.in); got != tc.want {
			t.Errorf("cleanLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
