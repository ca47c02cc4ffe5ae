package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestStats(t *testing.T) {
	ms := func(v ...float64) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x * float64(time.Millisecond))
		}
		return d
	}
	for _, c := range []struct {
		name                       string
		times                      []time.Duration
		items                      int
		min, q1, med, q3, max, ips float64
	}{
		// numpy.percentile([4, 1, 3, 2], [25, 50, 75]) = 1.75, 2.5, 3.25
		{"four", ms(4, 1, 3, 2), 2, 1, 1.75, 2.5, 3.25, 4, 800},
		{"odd", ms(10, 30, 20), 64, 10, 15, 20, 25, 30, 3200},
		{"one", ms(5), 4, 5, 5, 5, 5, 5, 800},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Record{Items: c.items}
			r.Stats(c.times)
			got := []float64{r.MinMS, r.Q1MS, r.MedianMS, r.Q3MS, r.MaxMS, r.ItemsPerS}
			want := []float64{c.min, c.q1, c.med, c.q3, c.max, c.ips}
			for i := range got {
				if math.Abs(got[i]-want[i]) > 1e-9 {
					t.Fatalf("min, q1, median, q3, max, items/s = %v, want %v", got, want)
				}
			}
			if r.Repeat != len(c.times) {
				t.Errorf("repeat %d, want %d", r.Repeat, len(c.times))
			}
		})
	}
}

func TestWorkAndTargets(t *testing.T) {
	ws := slices.Concat(ExplainWork(101), ScoreWork(), TrainWork(DefaultBatchPairs))
	var ids []string
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	want := []string{"explain-last", "explain-all", "explain-batch", "score", "train-4", "train-64"}
	if !slices.Equal(ids, want) {
		t.Fatalf("rows %v, want %v", ids, want)
	}
	if ws[2].Items() != 202 || ws[5].Items() != 64 || ws[0].AllLayers || !ws[1].AllLayers {
		t.Errorf("row sizes or layers wrong: %+v", ws)
	}
	for _, c := range []struct {
		r      Record
		target string
		ok     bool
		met    bool
	}{
		{Record{Work: "explain-last", Config: "vit-b-32", Device: "cuda:0", MedianMS: 4.9}, "≤ 5 ms", true, true},
		{Record{Work: "explain-all", Config: "vit-b-32", Device: "cuda:0", MedianMS: 10.1}, "≤ 10 ms", true, false},
		{Record{Work: "explain-batch", Config: "vit-b-32", Device: "cuda:0", Pairs: 101, MedianMS: 149}, "≤ 150 ms", true, true},
		{Record{Work: "explain-batch", Config: "vit-b-32", Device: "cuda:0", Pairs: 8, MedianMS: 10}, "", false, false},
		{Record{Work: "train-4", Config: "vit-b-32", Device: "cuda:0", ItemsPerS: 180}, "≥ 175 items/s", true, true},
		{Record{Work: "train-64", Config: "vit-b-32", Device: "cuda:0", ItemsPerS: 1200}, "≥ 1300 items/s", true, false},
		{Record{Work: "score", Config: "vit-b-32", Device: "cpu", MedianMS: 1}, "", false, false},
		{Record{Work: "score", Config: "tiny", Device: "cuda:0", MedianMS: 1}, "", false, false},
	} {
		tg, ok := TargetFor(&c.r)
		if ok != c.ok || (ok && (tg.String() != c.target || tg.Met(&c.r) != c.met)) {
			t.Errorf("%s on %s (%s): target %q %v met %v; want %q %v met %v",
				c.r.Work, c.r.Device, c.r.Config, tg, ok, ok && tg.Met(&c.r), c.target, c.ok, c.met)
		}
	}
}

// TestRecordFieldsMatchReference keeps the JSON fields of Record and of
// scripts/reference/hf_bench.py the same, in the same order.
func TestRecordFieldsMatchReference(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "scripts", "reference", "hf_bench.py"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)\nFIELDS = \[(.*?)\]`).FindSubmatch(src)
	if m == nil {
		t.Fatal("hf_bench.py has no FIELDS list")
	}
	var py []string
	for _, q := range regexp.MustCompile(`"([a-z_0-9]+)"`).FindAllSubmatch(m[1], -1) {
		py = append(py, string(q[1]))
	}
	var gofields []string
	rt := reflect.TypeOf(Record{})
	for i := range rt.NumField() {
		tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		gofields = append(gofields, tag)
	}
	if !slices.Equal(py, gofields) {
		t.Errorf("hf_bench.py FIELDS %v\nRecord JSON        %v", py, gofields)
	}
}

func sampleRecords() []Record {
	mem, calls := int64(3<<30), int64(42)
	base := Record{Config: "vit-b-32", Device: "cuda:0", DeviceName: "NVIDIA Test GPU", DType: "f32", TreeTokens: 56, Warmup: 3}
	mk := func(impl, work, title string, pairs int, ms ...float64) Record {
		r := base
		r.Impl, r.Work, r.Title, r.Pairs, r.Items = impl, work, title, pairs, 2*pairs
		if strings.HasPrefix(impl, "lavascope") {
			r.PeakMemBytes, r.BindingCalls = &mem, &calls
		}
		d := make([]time.Duration, len(ms))
		for i, x := range ms {
			d[i] = time.Duration(x * float64(time.Millisecond))
		}
		r.Stats(d)
		return r
	}
	return []Record{
		mk("hf-default", "explain-last", "relevance, one pair, last layer only", 1, 17, 18, 19),
		mk("hf-default", "score", "scoring one pair (forward only)", 1, 14, 14, 15),
		mk("hf-best", "score", "scoring one pair (forward only)", 1, 8, 9, 10),
		mk("hf-default", "train-64", "training, 64 items (32 pairs) per step", 32, 90, 92, 94),
		mk("hf-best", "train-64", "training, 64 items (32 pairs) per step", 32, 60, 60, 61),
		mk("lavascope", "explain-last", "relevance, one pair, last layer only", 1, 4, 4.5, 5),
		mk("lavascope", "score", "scoring one pair (forward only)", 1, 6, 6, 7),
		mk("lavascope", "train-64", "training, 64 items (32 pairs) per step", 32, 46, 47, 48),
		// A variant faster on one row: "with" names it there.
		mk("lavascope+tf32+graphs", "score", "scoring one pair (forward only)", 1, 2, 2, 3),
		mk("lavascope+tf32+graphs", "explain-last", "relevance, one pair, last layer only", 1, 5, 5, 6),
	}
}

func TestReadRecordsRoundTrip(t *testing.T) {
	recs := sampleRecords()
	var buf bytes.Buffer
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteString("\n\n")
	}
	got, err := ReadRecords(&buf, "x.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Errorf("records changed on the way through JSON")
	}
	for _, c := range []struct{ in, want string }{
		{`{"impl":"lavascope","work":"score","bogus":1}`, "x.jsonl:1: not a benchmark record"},
		{"\n{\"work\":\"score\"}", "x.jsonl:2: record without impl or work"},
		{"gpu-check: all passed", "x.jsonl:1: not a benchmark record"},
	} {
		_, err := ReadRecords(strings.NewReader(c.in), "x.jsonl")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ReadRecords(%q) = %v, want an error with %q", c.in, err, c.want)
		}
	}
}

func TestWriteComparisonGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteComparison(&buf, sampleRecords(), false); err != nil {
		t.Fatal(err)
	}
	if err := WriteTable(&buf, sampleRecords()[5:8]); err != nil {
		t.Fatal(err)
	}
	if err := WriteComparison(&buf, sampleRecords(), true); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "compare.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if buf.String() != string(want) {
		t.Errorf("comparison differs from %s:\n%s", golden, buf.String())
	}
	if err := WriteComparison(&buf, nil, false); err == nil {
		t.Errorf("no records: no error")
	}
}

func FuzzReadRecords(f *testing.F) {
	for _, r := range sampleRecords()[:2] {
		b, _ := json.Marshal(r)
		f.Add(b)
	}
	f.Add([]byte(`{"impl":"x","work":"y","median_ms":"fast"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ReadRecords(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		for _, r := range recs {
			if r.Impl == "" || r.Work == "" {
				t.Fatalf("accepted a record without impl or work: %+v", r)
			}
		}
		var buf bytes.Buffer
		_ = WriteComparison(&buf, recs, false)
	})
}
