package doctor

import (
	"fmt"
	"os"
	"strings"

	"github.com/lavascope/lavascope/tui/graphics"
)

// checkGraphics reports how images would reach this terminal, and in how
// many colours. A terminal that can only show half-blocks is not a failure:
// every mode degrades to them.
func checkGraphics(env *doctorEnv) (checkStatus, string) {
	caps := graphics.DetectTerminal()
	lines := caps.Lines()
	want := env.a.Config.Graphics
	if want != "" && want != "auto" {
		line := fmt.Sprintf("configured: %s (auto-detection would pick %s)", want, caps.Mode)
		if mode, err := graphics.ParseMode(want); err == nil {
			if _, note := graphics.Multiplexed(mode, caps, os.Getenv); note != "" {
				line += "; " + note
			}
		}
		lines = append([]string{line}, lines...)
	}
	return checkOK, strings.Join(lines, "\n")
}
