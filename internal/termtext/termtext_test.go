package termtext

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want, lines string }{
		{"bag", "bag", "bag"},
		{"café 鞄 🙂 a\u200eb", "café 鞄 🙂 a\u200eb", "café 鞄 🙂 a\u200eb"},
		{"a\x1b[31mb", `a\x1b[31mb`, `a\x1b[31mb`},
		{"\x9b2J", `\x9b2J`, `\x9b2J`},
		{"\u009b2J", `\x9b2J`, `\x9b2J`},
		{"x\x7fy\x00", `x\x7fy\x00`, `x\x7fy\x00`},
		{"\u202eevil\u2066", `\u202eevil\u2066`, `\u202eevil\u2066`},
		{"bad\xffbyte", `bad\xffbyte`, `bad\xffbyte`},
		{"tab\tnl\n", `tab\x09nl\x0a`, "tab\tnl\n"},
		{"\x1b]52;c;aGk=\x07", `\x1b]52;c;aGk=\x07`, `\x1b]52;c;aGk=\x07`},
	}
	for _, tt := range tests {
		if got := Sanitize(tt.in); got != tt.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := Lines(tt.in); got != tt.lines {
			t.Errorf("Lines(%q) = %q, want %q", tt.in, got, tt.lines)
		}
		if ansi.Strip(Sanitize(tt.in)) != Sanitize(tt.in) {
			t.Errorf("Sanitize(%q) still holds an escape sequence", tt.in)
		}
	}
}

// TestWriterSplitCharacter writes a text one byte at a time: characters cut
// between writes must come out whole, not as escaped bytes.
func TestWriterSplitCharacter(t *testing.T) {
	in := "café 鞄 🙂\x1b[2J\u202e\xff\n"
	var b bytes.Buffer
	w := NewWriter(&b)
	for i := range len(in) {
		if _, err := w.Write([]byte{in[i]}); err != nil {
			t.Fatal(err)
		}
	}
	if want := Lines(in); b.String() != want {
		t.Errorf("byte by byte: %q, want %q", b.String(), want)
	}
}

func TestJSON(t *testing.T) {
	s := "a\x1b]0;title\x07 \u009b2J \u202eevil\u2066 \u2028 \x7f ok é"
	data, err := json.Marshal(map[string]string{"k": s})
	if err != nil {
		t.Fatal(err)
	}
	out := JSON(data)
	for _, r := range string(out) {
		if jsonUnsafe(r) {
			t.Fatalf("%q holds %U", out, r)
		}
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["k"] != s {
		t.Errorf("round trip: %q, %v; want %q", back["k"], err, s)
	}
	if clean := []byte(`{"k": "plain"}`); !bytes.Equal(JSON(clean), clean) {
		t.Error("clean JSON changed")
	}
}

// FuzzJSON checks that JSON's output of any encoded string is valid JSON
// that decodes to what the original decodes to and holds nothing unsafe.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[31m", "\u009b\u202e\u2066", "\xff\xfe", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		data, err := json.MarshalIndent([]string{s, "x"}, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		var want, got []string
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		out := JSON(data)
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("decodes to %q, want %q", got, want)
		}
		if !utf8.Valid(out) {
			t.Errorf("%q is not UTF-8", out)
		}
		for _, r := range string(out) {
			if jsonUnsafe(r) {
				t.Errorf("%q holds %U", out, r)
			}
		}
	})
}
