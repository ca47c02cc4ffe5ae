package tree_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

func TestTreeCommands(t *testing.T) {
	tests := []struct {
		name       string
		stdin      string
		args       []string
		code       int
		stdout     string // exact, when set
		contains   []string
		stderrHave []string
	}{
		{
			name:   "show argument",
			args:   []string{"tree", "show", "(S (NP (NNP Danny)) (VP (VBD left)) (. .))"},
			stdout: "S\n├─ NP\n│  └─ NNP Danny\n├─ VP\n│  └─ VBD left\n└─ . .\n",
		},
		{
			name:   "show stdin, compact, narrow",
			stdin:  "(ROOT (S (NP (NNP Danny)) (VP (VBD left))))\n",
			args:   []string{"tree", "show", "--layout", "compact", "--width", "16"},
			stdout: "(S (NP (NNP\nDanny)) (VP (VBD\nleft)))\n",
		},
		{
			name:   "show two trees from stdin with -",
			stdin:  "(NN a)\n(NN b)",
			args:   []string{"tree", "show", "-"},
			stdout: "NN a\n\nNN b\n",
		},
		{
			name:   "linearize paper",
			args:   []string{"tree", "linearize", cmdtest.PPB},
			stdout: "(s (np (nnp danny)) (vp (vbd approached) (np (np (dt the) (jj green) (nn chair)) (pp (in with) (np (dt a) (jj yellow) (nn bag))))) (. .))\n",
		},
		{
			name:   "linearize styles",
			args:   []string{"tree", "linearize", "--style", "words", cmdtest.PPA, cmdtest.PPB},
			stdout: "Danny approached the green chair with a yellow bag.\nDanny approached the green chair with a yellow bag.\n",
		},
		{
			name:   "linearize nopos from stdin",
			stdin:  cmdtest.PPA,
			args:   []string{"tree", "linearize", "--style=nopos"},
			stdout: "(s (np danny) (vp approached (np the green chair) (pp with (np a yellow bag))) .)\n",
		},
		{
			name: "diff",
			args: []string{"tree", "diff", cmdtest.PPA, cmdtest.PPB},
			stdout: `words      Danny approached the green chair with a yellow bag .
only in A  (none)
only in B  NP[2,9) "the green chair with a yellow bag"
differ in  VP[1,9) "approached the green chair with a yellow bag"
moved      PP[5,9) "with a yellow bag": under VP[1,9) in A, under NP[2,9) in B
A  (s (np (nnp danny)) (vp (vbd approached) (np (dt the) (jj green) (nn chair)) (pp (in with) (np (dt a) (jj yellow) (nn bag)))) (. .))
B  (s (np (nnp danny)) (vp (vbd approached) (np (np (dt the) (jj green) (nn chair)) (pp (in with) (np (dt a) (jj yellow) (nn bag))))) (. .))
                                            ^^^                                                                                    ^
`,
		},
		{
			name:     "diff of equal trees",
			stdin:    cmdtest.PPA + "\n" + cmdtest.PPA,
			args:     []string{"tree", "diff"},
			contains: []string{"the trees are the same\n"},
		},
		{
			name:       "unbalanced bracket",
			args:       []string{"tree", "show", "(S (NP (NNP Danny)) (VP (VBD approached) (NP (DT the)))))"},
			code:       2,
			stderrHave: []string{"argument 1: unbalanced ')' at 1:57\n", "\n" + strings.Repeat(" ", 2+56) + "^\n"},
		},
		{
			name:       "error on stdin names its line",
			stdin:      cmdtest.PPA + "\n(S (NP (NN a)) b)\n",
			args:       []string{"tree", "linearize"},
			code:       2,
			stderrHave: []string{`stdin: word "b" among constituents`, "at 2:16"},
		},
		{
			name:       "empty stdin",
			args:       []string{"tree", "show"},
			code:       2,
			stderrHave: []string{"stdin: no tree"},
		},
		{
			name:       "escape sequence refused",
			args:       []string{"tree", "show", "(NN a\x1b[2Jb)"},
			code:       2,
			stderrHave: []string{"control character U+001B at 1:6"},
		},
		{
			name:       "diff needs two trees",
			args:       []string{"tree", "diff", cmdtest.PPA},
			code:       2,
			stderrHave: []string{"diff compares two trees, got 1"},
		},
		{
			name:       "diff of different sentences",
			args:       []string{"tree", "diff", cmdtest.PPA, strings.Replace(cmdtest.PPB, "chair", "table", 1)},
			code:       2,
			stderrHave: []string{`word 5 is "chair" in A and "table" in B`},
		},
		{
			name:       "bad style",
			args:       []string{"tree", "linearize", "--style", "lisp", cmdtest.PPA},
			code:       2,
			stderrHave: []string{`unknown linearization style "lisp"`},
		},
		{
			name:       "bad layout",
			args:       []string{"tree", "show", "--layout", "sideways", cmdtest.PPA},
			code:       2,
			stderrHave: []string{`--layout "sideways"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := cmdtest.RunCLI(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Errorf("exit status %d, want %d\nstderr: %s", code, tt.code, stderr)
			}
			if tt.stdout != "" && stdout != tt.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tt.stdout)
			}
			for _, s := range tt.contains {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.stderrHave {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if tt.code != 0 && stdout != "" {
				t.Errorf("failed command wrote to stdout: %q", stdout)
			}
		})
	}
}

func TestTreeJSON(t *testing.T) {
	stdout, stderr, code := cmdtest.RunCLI(t, "", "tree", "diff", "--json", cmdtest.PPA, cmdtest.PPB)
	if code != 0 {
		t.Fatalf("exit status %d: %s", code, stderr)
	}
	var d struct {
		Words []string `json:"words"`
		Equal bool     `json:"equal"`
		OnlyB []struct {
			Label      string
			Start, End int
			Text       string
		} `json:"only_b"`
		Moves []struct {
			Label string `json:"label"`
			SiteA struct {
				Label string `json:"label"`
			} `json:"site_a"`
			SiteB struct {
				Label string `json:"label"`
			} `json:"site_b"`
		} `json:"moves"`
		B struct {
			Text      string `json:"text"`
			Unmatched []struct {
				Start, End int
				Kind       string
			} `json:"unmatched"`
		} `json:"b"`
	}
	if err := json.Unmarshal([]byte(stdout), &d); err != nil {
		t.Fatalf("diff --json: %v\n%s", err, stdout)
	}
	if d.Equal || len(d.Words) != 10 || len(d.OnlyB) != 1 || d.OnlyB[0].Text != "the green chair with a yellow bag" {
		t.Errorf("diff --json = %+v", d)
	}
	if len(d.Moves) != 1 || d.Moves[0].Label != "PP" || d.Moves[0].SiteA.Label != "VP" || d.Moves[0].SiteB.Label != "NP" {
		t.Errorf("moves = %+v", d.Moves)
	}
	var marked []string
	for _, u := range d.B.Unmatched {
		marked = append(marked, u.Kind+" "+d.B.Text[u.Start:u.End])
	}
	if strings.Join(marked, ", ") != "open (np, close )" {
		t.Errorf("unmatched in B = %q", marked)
	}

	stdout, _, code = cmdtest.RunCLI(t, "(NN a)\n(NP (DT the) (NN bag))\n", "tree", "linearize", "--json", "--style", "ptb")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("linearize --json: status %d, %d lines", code, len(lines))
	}
	var l struct {
		Style string `json:"style"`
		Text  string `json:"text"`
		Parts []struct {
			Start, End int
			Kind       string
			Node       int
			Word       *int
		} `json:"parts"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &l); err != nil {
		t.Fatal(err)
	}
	if l.Style != "ptb" || l.Text != "(NP (DT the) (NN bag))" || len(l.Parts) != 8 {
		t.Fatalf("linearize --json = %+v", l)
	}
	if p := l.Parts[5]; p.Kind != "word" || l.Text[p.Start:p.End] != "bag" || p.Node != 2 || p.Word == nil || *p.Word != 1 {
		t.Errorf("part 5 = %+v", p)
	}

	stdout, _, code = cmdtest.RunCLI(t, "", "tree", "show", "--json", "(ROOT (NP (DT the) (NN bag)))")
	var s struct {
		Tree  string   `json:"tree"`
		Words []string `json:"words"`
		Root  struct {
			Label    string `json:"label"`
			Children []struct {
				Label, Word string
			} `json:"children"`
		} `json:"root"`
	}
	if err := json.Unmarshal([]byte(stdout), &s); err != nil || code != 0 {
		t.Fatalf("show --json: %v (status %d)", err, code)
	}
	if s.Tree != "(NP (DT the) (NN bag))" || s.Root.Label != "NP" || len(s.Root.Children) != 2 || s.Root.Children[1].Word != "bag" {
		t.Errorf("show --json = %+v", s)
	}
}

// TestBadInputExits2: a bad flag, argument or setting is bad input, exit 2
// (cobra's own errors exited 1).
func TestBadInputExits2(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"doctr"}, "did you mean doctor?"},
		{nil, []string{"doctor", "extra"}, `unknown command "extra"`},
		{nil, []string{"tree", "show", "--no-such-flag"}, "unknown flag"},
		{nil, []string{"--threads", "010", "tree", "show", "(S x)"}, "leading 0"},
		{map[string]string{"LAVASCOPE_THREADS": "0x10"}, []string{"tree", "show", "(S x)"}, "LAVASCOPE_THREADS"},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		_, stderr, code := cmdtest.RunCLI(t, "", tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v %v: exit %d, want 2 with %q:\n%s", tc.env, tc.args, code, tc.want, stderr)
		}
		for k := range tc.env {
			t.Setenv(k, "")
		}
	}
}
