package figure

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"strconv"
)

// fontFamily prefers the Go font that the layout is measured with; the
// others are close enough in width not to collide.
const fontFamily = `Go, "Helvetica Neue", Helvetica, Arial, sans-serif`

// SVG writes fig as an SVG document: text as <text> elements a reader can
// search and edit, the images as embedded PNGs. Every string from the
// dataset was made printable when laid out, and is XML-escaped here.
func SVG(w io.Writer, fig *Figure) error {
	bw := bufio.NewWriter(w)
	h := num(fig.H)
	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="%d" height="%s" viewBox="0 0 %d %s">`+"\n", Width, h, Width, h)
	fmt.Fprintf(bw, "<style>text{font-family:%s}.b{font-weight:bold}.i{font-style:italic}</style>\n", fontFamily)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	for _, it := range fig.items {
		switch it.kind {
		case kindRect:
			if it.stroke == 0 {
				fmt.Fprintf(bw, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>`+"\n", num(it.x), num(it.y), num(it.w), num(it.h), hex(it.fill))
			} else {
				fmt.Fprintf(bw, `<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="%s" stroke-width="%s"/>`+"\n",
					num(it.x), num(it.y), num(it.w), num(it.h), hex(it.fill), num(it.stroke))
			}
		case kindImage:
			data, err := pngBase64(it.img)
			if err != nil {
				return err
			}
			fmt.Fprintf(bw, `<image x="%s" y="%s" width="%s" height="%s" preserveAspectRatio="none" xlink:href="data:image/png;base64,%s"/>`+"\n",
				num(it.x), num(it.y), num(it.w), num(it.h), data)
		case kindText:
			class := ""
			switch it.style {
			case bold:
				class = ` class="b"`
			case italic:
				class = ` class="i"`
			}
			a := ""
			switch it.anchor {
			case anchorMiddle:
				a = ` text-anchor="middle"`
			case anchorEnd:
				a = ` text-anchor="end"`
			}
			if it.fit > 0 {
				a += fmt.Sprintf(` textLength="%s" lengthAdjust="spacingAndGlyphs"`, num(it.fit))
			}
			fmt.Fprintf(bw, `<text x="%s" y="%s" font-size="%s" fill="%s"%s%s>`, num(it.x), num(it.y), num(it.size), hex(it.fill), class, a)
			// EscapeText escapes & < > ' " and turns characters XML 1.0
			// cannot hold into U+FFFD.
			if err := xml.EscapeText(bw, []byte(it.text)); err != nil {
				return err
			}
			bw.WriteString("</text>\n")
		}
	}
	bw.WriteString("</svg>\n")
	return bw.Flush()
}

func num(v float64) string { return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) }

func hex(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

func pngBase64(img image.Image) (string, error) {
	var b bytes.Buffer
	if err := encodePNG(&b, img); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b.Bytes()), nil
}
