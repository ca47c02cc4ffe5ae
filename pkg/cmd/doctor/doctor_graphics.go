package doctor

import (
	"fmt"
	"strings"

	"github.com/lavascope/lavascope/tui/graphics"
)

// checkGraphics reports how images would reach this terminal. A terminal that can
// only show half-blocks is not a failure: every mode degrades to them.
func checkGraphics(env *doctorEnv) (checkStatus, string) {
	caps := graphics.DetectTerminal()
	lines := caps.Lines()
	want := env.a.Config.Graphics
	if want != "" && want != "auto" {
		lines = append([]string{fmt.Sprintf("configured: %s (auto-detection would pick %s)", want, caps.Mode)}, lines...)
	}
	return checkOK, strings.Join(lines, "\n")
}
