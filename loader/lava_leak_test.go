package loader

import (
	"strings"
	"testing"
)

func TestLeakage(t *testing.T) {
	pair := func(id, split, sentence, treeA, imgA string) Pair {
		return Pair{ID: id, Split: split, Sentence: sentence, Readings: []Reading{
			{Tree: treeA, Image: imgA}, {Tree: "(S (X b))", Image: "images/b.png"},
		}}
	}
	pairs := []Pair{
		pair("p1", SplitTrain, "a b", "(S (X a))", "images/a.png"),
		pair("p2", SplitTrain, "c d", "(S (X c))", "images/c.png"),
		// p1 again, readings swapped and spaced otherwise, in test.
		{ID: "p1.test", Split: SplitTest, Sentence: "a  b", Readings: []Reading{{Tree: "(S (X b))", Image: "./images/b.png"}, {Tree: "(S  (X a))", Image: "images/a.png"}}},
		// Another pair of p2's sentence, in val: the sentence leaks.
		pair("p3", SplitVal, "c d", "(S (Y c))", "images/d.png"),
		pair("p4", SplitTest, "e f", "(S (X e))", "images/e.png"),
		pair("p1.val", SplitVal, "a b", "(S (X a))", "images/a.png"),
		pair("p5", SplitTest, "e f", "(S (Y e))", "images/f.png"),
	}
	l := NewLeakage("pairs.jsonl")
	for i := range pairs {
		l.Add(i+1, &pairs[i])
	}
	var got []string
	for _, e := range l.Errors() {
		got = append(got, e.Error())
	}
	want := []string{
		"pairs.jsonl:3: readings: leak: the same pair (the same trees and images) is also in train (line 1) and val (line 6)",
		"pairs.jsonl:4: sentence: leak: the same sentence is also in train (line 2)",
		"pairs.jsonl:6: readings: leak: the same pair (the same trees and images) is also in train (line 1) and test (line 3)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("leaks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestOtherSplits(t *testing.T) {
	var seen []seenAt
	for i := 1; i <= 8; i++ {
		seen = append(seen, seenAt{line: i, split: SplitTrain})
	}
	seen = append(seen, seenAt{line: 9, split: SplitTest})
	if got, want := otherSplits(seen, SplitTest), "train (lines 1, 2, 3, 4, 5 and 3 more)"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
