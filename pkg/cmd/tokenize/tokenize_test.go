package tokenize_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

// tokenizerDir writes a small byte-level BPE vocabulary (the layout of CLIP's)
// with merges for "np" and "))".
func tokenizerDir(t *testing.T) string {
	t.Helper()
	vocab := map[string]int{}
	add := func(s string) { vocab[s] = len(vocab) }
	for b := range 256 {
		add(string(byteRune(b)))
	}
	for b := range 256 {
		add(string(byteRune(b)) + "</w>")
	}
	merges := []string{"n p</w>", ") )</w>"}
	for _, m := range merges {
		add(strings.ReplaceAll(m, " ", ""))
	}
	add("<|startoftext|>")
	add("<|endoftext|>")
	dir := t.TempDir()
	vj, _ := json.Marshal(vocab)
	if err := os.WriteFile(filepath.Join(dir, "vocab.json"), vj, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "merges.txt"), []byte("#version: 0.2\n"+strings.Join(merges, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// byteRune is GPT-2's printable rune for a byte.
func byteRune(b int) rune {
	if ('!' <= b && b <= '~') || ('¡' <= b && b <= '¬') || ('®' <= b && b <= 'ÿ') {
		return rune(b)
	}
	n := 0
	for c := range b {
		if !(('!' <= c && c <= '~') || ('¡' <= c && c <= '¬') || ('®' <= c && c <= 'ÿ')) {
			n++
		}
	}
	return rune(256 + n)
}

type tokenLine struct {
	Text      string   `json:"text"`
	IDs       []int32  `json:"ids"`
	Tokens    []string `json:"tokens"`
	Offsets   [][2]int `json:"offsets"`
	Truncated bool     `json:"truncated"`
}

func TestTokenizeJSON(t *testing.T) {
	dir := tokenizerDir(t)
	out, errOut, code := cmdtest.RunCLI(t, "", "tokenize", "--tokenizer", dir, "--json", "(NP x))", "a b c d")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got:\n%s", out)
	}
	var l tokenLine
	if err := json.Unmarshal([]byte(lines[0]), &l); err != nil {
		t.Fatal(err)
	}
	wantTokens := []string{"<|startoftext|>", "(</w>", "np</w>", "x</w>", "))</w>", "<|endoftext|>"}
	wantOffsets := [][2]int{{0, 0}, {0, 1}, {1, 3}, {4, 5}, {5, 7}, {7, 7}}
	if l.Text != "(NP x))" || !slices.Equal(l.Tokens, wantTokens) || !slices.Equal(l.Offsets, wantOffsets) || l.Truncated {
		t.Errorf("got %+v", l)
	}
	if len(l.IDs) != len(l.Tokens) || l.IDs[0] != 514 || l.IDs[len(l.IDs)-1] != 515 {
		t.Errorf("ids %v", l.IDs)
	}
}

func TestTokenizeContextAndStdin(t *testing.T) {
	dir := tokenizerDir(t)
	out, errOut, code := cmdtest.RunCLI(t, "a b c d\nnp\n", "tokenize", "--tokenizer", dir, "--json", "--context", "4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var ls []tokenLine
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var l tokenLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		ls = append(ls, l)
	}
	if len(ls) != 2 || !ls[0].Truncated || len(ls[0].IDs) != 4 || ls[1].Truncated || len(ls[1].IDs) != 3 {
		t.Errorf("got %+v", ls)
	}
}

func TestTokenizeTable(t *testing.T) {
	dir := tokenizerDir(t)
	out, _, code := cmdtest.RunCLI(t, "", "tokenize", "--tokenizer", dir, "(NP x))")
	want := `"(NP x))"  (6 ids)
  0  514  <|startoftext|>  0-0
  1  296  (</w>            0-1  "("
  2  512  np</w>           1-3  "NP"
  3  376  x</w>            4-5  "x"
  4  513  ))</w>           5-7  "))"
  5  515  <|endoftext|>    7-7
`
	if code != 0 || out != want {
		t.Errorf("exit %d, got:\n%s\nwant:\n%s", code, out, want)
	}
}

func TestTokenizeErrors(t *testing.T) {
	dir := tokenizerDir(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tokenize", "x"}, "--tokenizer is required"},
		{[]string{"tokenize", "--tokenizer", t.TempDir(), "x"}, "vocab.json"},
		{[]string{"tokenize", "--tokenizer", dir, "--context", "-1", "x"}, "--context must be"},
	} {
		_, errOut, code := cmdtest.RunCLI(t, "", tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestTokenizeDemo reads the embedded demo model's own vocabulary, as every
// command that takes a checkpoint resolves "demo".
func TestTokenizeDemo(t *testing.T) {
	out, errOut, code := cmdtest.RunCLI(t, "", "tokenize", "--tokenizer", "demo", "--json", "(s (np (nnp danny)))")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var l tokenLine
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &l); err != nil {
		t.Fatal(err)
	}
	if l.Tokens[0] != "<|startoftext|>" || l.Tokens[len(l.Tokens)-1] != "<|endoftext|>" || len(l.Tokens) < 4 {
		t.Errorf("tokens %v", l.Tokens)
	}
}
