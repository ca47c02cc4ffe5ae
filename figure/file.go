package figure

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/report"
)

// Formats are the file formats a figure is written in, by extension.
var Formats = []string{"png", "svg"}

// ParseFormats reads a comma-separated list of Formats, such as "png,svg".
func ParseFormats(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f != "png" && f != "svg" {
			return nil, fmt.Errorf("unknown figure format %q (want png, svg or both: png,svg)", f)
		}
		for _, g := range out {
			if g == f {
				return nil, fmt.Errorf("figure format %s named twice", f)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// Name is the file name, without extension, of the figure of a pair for a
// method, start layer and target; `lavascope explain` and the explorer's
// export both use it.
func Name(pair string, m explain.Method, start explain.StartLayer, t report.Target) string {
	return loader.FileName(fmt.Sprintf("%s_%s_%s_%s", pair, m, start, t))
}

// Write writes fig to path atomically, as a PNG width pixels wide or as an
// SVG, as path's extension says.
func Write(path string, fig *Figure, width int) error {
	var fill func(io.Writer) error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png":
		// Draw before the file is created, so that a bad width leaves
		// nothing behind.
		img, err := Image(fig, width)
		if err != nil {
			return err
		}
		fill = func(w io.Writer) error { return encodePNG(w, img) }
	case ".svg":
		fill = func(w io.Writer) error { return SVG(w, fig) }
	default:
		return fmt.Errorf("figure: %s: the name ends in neither .png nor .svg", path)
	}
	if err := atomicfile.Write(path, fill); err != nil {
		return fmt.Errorf("figure: %w", err)
	}
	return nil
}
