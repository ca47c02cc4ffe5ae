package show_test

import (
	"errors"
	"testing"

	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/pkg/cmd/tree/show"
)

// TestNewCmdShowFlags: the flags land in ShowOptions, with the arguments,
// and runF runs in place of the command.
func TestNewCmdShowFlags(t *testing.T) {
	var got *show.ShowOptions
	stop := errors.New("stop")
	cmd := show.NewCmdShow(factory.New(), func(o *show.ShowOptions) error { got = o; return stop })
	cmd.SetArgs([]string{"--layout", "compact", "--width", "40", "--json", "(S (NN a))"})
	if err := cmd.Execute(); !errors.Is(err, stop) {
		t.Fatalf("Execute: %v, want runF's error", err)
	}
	if got == nil || got.Layout != "compact" || got.Width != 40 || !got.JSON || len(got.Args) != 1 || got.Args[0] != "(S (NN a))" {
		t.Errorf("options %+v", got)
	}
}
