package graphics_test

import (
	"fmt"
	"time"

	"github.com/lavascope/lavascope/tui/graphics"
)

func ExampleDetect() {
	env := map[string]string{"TERM": "xterm-256color", "COLORTERM": "truecolor"}
	c := graphics.Detect(graphics.Probe{
		Getenv:   func(k string) string { return env[k] },
		Terminal: true,
		Asked:    true,
		Timeout:  150 * time.Millisecond,
		Replies:  []byte("\x1b[?62;4;22c"), // DA1 with attribute 4
	})
	for _, line := range c.Lines() {
		fmt.Println(line)
	}
	// Output:
	// terminal: TERM=xterm-256color COLORTERM=truecolor
	// DA1: attributes 4;22: sixel yes
	// kitty graphics: query not answered
	// cell size: 10×20 px (assumed; the terminal did not say)
	// colour: 24-bit (COLORTERM=truecolor)
	// graphics mode: sixel (DA1 attribute 4)
}

func ExampleParseMode() {
	m, err := graphics.ParseMode("Blocks")
	fmt.Println(m, err)
	_, err = graphics.ParseMode("iterm")
	fmt.Println(err)
	// Output:
	// blocks <nil>
	// graphics: unknown mode "iterm" (want auto|sixel|kitty|blocks|none)
}
