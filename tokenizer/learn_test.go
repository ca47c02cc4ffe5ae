package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var bpeCorpus = []string{
	"(s (np (nnp danny)) (vp (vbd approached) (np (dt the) (jj green) (nn chair)) (pp (in with) (np (dt a) (jj yellow) (nn bag)))) (. .))",
	"(s (np (nnp danny)) (vp (vbd approached) (np (np (dt the) (jj green) (nn chair)) (pp (in with) (np (dt a) (jj yellow) (nn bag))))) (. .))",
	"Danny approached the green chair with a yellow bag.",
	"(s (np (nnp andrei)) (vp (vbd moved) (np (dt the) (jj yellow) (nx (nx (nn chair)) (cc and) (nx (nn bag))))) (. .))",
	"Andrei moved the yellow chair and bag.",
}

func TestLearnBPE(t *testing.T) {
	tok, err := LearnBPE(bpeCorpus, 1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	// CLIP's layout: bytes, bytes ending a word, merges, then the specials.
	for id, want := range map[int32]string{0: "!", 93: "~", 256: "!</w>"} {
		if got := tok.Token(id); got != want {
			t.Errorf("token %d is %q, want %q", id, got, want)
		}
	}
	if tok.BOS() != int32(tok.VocabSize()-2) || tok.EOS() != int32(tok.VocabSize()-1) {
		t.Errorf("BOS %d, EOS %d of %d ids: want the last two", tok.BOS(), tok.EOS(), tok.VocabSize())
	}
	// Words seen often enough become one token; "))" closes two
	// constituents in one token, as CLIP's own vocabulary does.
	for _, word := range []string{"danny", "chair", "(", "))", "yellow", "np"} {
		enc := tok.Encode(word, 0)
		if len(enc.IDs) != 3 {
			t.Errorf("%q: tokens %q, want one", word, tok.Tokens(enc.IDs[1:len(enc.IDs)-1]))
		}
	}
	// Every text comes back from its ids, and unseen words still encode
	// (byte by byte).
	for _, text := range append(slices.Clone(bpeCorpus), "yevgeni picked up the telescope") {
		enc := tok.Encode(text, 0)
		want := strings.ToLower(text)
		if got := tok.Decode(enc.IDs); strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(want, " ", "") {
			t.Errorf("decode(encode(%q)) = %q", text, got)
		}
		for _, id := range enc.IDs {
			if tok.Token(id) == "" {
				t.Errorf("%q: id %d has no token", text, id)
			}
		}
	}
	// The files read back as the same tokenizer, and learning again gives
	// the same files.
	dir := t.TempDir()
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LearnBPE(bpeCorpus, 1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir2 := t.TempDir()
	if err := again.Save(dir2); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"vocab.json", "merges.txt"} {
		a, _ := os.ReadFile(filepath.Join(dir, f))
		b, _ := os.ReadFile(filepath.Join(dir2, f))
		if string(a) != string(b) {
			t.Errorf("%s differs between two runs on the same texts", f)
		}
	}
	for _, text := range bpeCorpus {
		if a, b := tok.Encode(text, 0).IDs, back.Encode(text, 0).IDs; !slices.Equal(a, b) {
			t.Errorf("%q: %v, after Save and Load %v", text, a, b)
		}
	}
}

func TestLearnBPELimits(t *testing.T) {
	few, err := LearnBPE(bpeCorpus, 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n := few.VocabSize(); n != 512+5+2 {
		t.Errorf("5 merges: %d ids, want %d", n, 512+5+2)
	}
	none, err := LearnBPE(nil, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n := none.VocabSize(); n != 514 {
		t.Errorf("no texts: %d ids, want 514", n)
	}
	for _, bad := range []struct {
		texts       []string
		merges, min int
	}{
		{bpeCorpus, -1, 2},
		{bpeCorpus, 10, 0},
		{[]string{"a <|endoftext|> b"}, 10, 1},
	} {
		if _, err := LearnBPE(bad.texts, bad.merges, bad.min); err == nil {
			t.Errorf("LearnBPE(%q, %d, %d): no error", bad.texts, bad.merges, bad.min)
		}
	}
}

func BenchmarkLearnBPE(b *testing.B) {
	var texts []string
	for range 200 {
		texts = append(texts, bpeCorpus...)
	}
	for b.Loop() {
		if _, err := LearnBPE(texts, 300, 2); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzLearnBPE: any texts give a vocabulary the tokenizer accepts, in which
// every text encodes to known ids and decodes back to its words.
func FuzzLearnBPE(f *testing.F) {
	f.Add("(s (np (nnp danny)) (. .))", "Danny left.", 50)
	f.Add("ßüñ 漢字 😀 ))))", "a&amp;b  c", 3)
	f.Fuzz(func(t *testing.T, a, b string, merges int) {
		if strings.Contains(a+b, "<|") {
			t.Skip("special tokens")
		}
		tok, err := LearnBPE([]string{a, b, a}, merges%200, 2)
		if merges%200 < 0 {
			if err == nil {
				t.Fatal("negative merges: no error")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		base, err := LearnBPE(nil, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{a, b} {
			enc := tok.Encode(text, 0)
			for _, id := range enc.IDs {
				if tok.Token(id) == "" {
					t.Fatalf("%q: id %d has no token", text, id)
				}
			}
			if got, want := tok.Decode(enc.IDs), base.Decode(base.Encode(text, 0).IDs); got != want {
				t.Fatalf("%q decodes to %q with merges, %q without", text, got, want)
			}
		}
	})
}
