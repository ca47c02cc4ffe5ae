package reportcmd_test

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/analysis"
	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	reportcmd "github.com/lavascope/lavascope/pkg/cmd/report"
)

// TestReportDemo is the check on the embedded demo: for a pair
// whose readings differ by a run of closing brackets, readings.csv states
// how much of each reading's relevance falls on the tokens the other
// lacks; the summary has per-family figures; report.md, families.csv and
// the charts are written. Three pairs (one per family) keep it short; the
// whole test split (101 pairs) takes 35 to 45 s on a 2-core Xeon.
func TestReportDemo(t *testing.T) {
	dev := torchtest.Device(t)
	out := filepath.Join(t.TempDir(), "rep")
	stdout, stderr, code := cmdtest.RunCLI(t, "", "report", "--checkpoint", "demo", "--data", "demo", "--limit", "3",
		"--out", out, "--json", "--device", dev.String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum struct {
		Out string `json:"out"`
		analysis.Summary
	}
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if sum.Out != out || sum.All.Readings != 6 || sum.All.Pairs != 3 || len(sum.Families) != 3 || sum.All.Unique.N != 6 {
		t.Fatalf("summary %+v", sum)
	}
	for _, f := range sum.Families {
		if f.Readings != 2 || f.Unique.Mean <= 0 || f.Unique.Mean >= 1 || f.Faithfulness.Perturbed != 2 || len(f.MarginHist.Counts) == 0 {
			t.Errorf("family %+v", f)
		}
	}
	for _, f := range []string{analysis.ReportFile, analysis.FamiliesFile, analysis.MarginChart, analysis.UniqueChart, "readings.csv", "summary.csv"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, analysis.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sum.Families {
		if !strings.Contains(string(md), "| "+f.Name+" | ") {
			t.Errorf("report.md has no row for %s:\n%s", f.Name, md)
		}
	}
	fh, err := os.Open(filepath.Join(out, "readings.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(fh).ReadAll()
	fh.Close()
	if err != nil {
		t.Fatal(err)
	}
	col := func(name string) int {
		i := slices.Index(rows[0], name)
		if i < 0 {
			t.Fatalf("readings.csv has no column %s: %v", name, rows[0])
		}
		return i
	}
	uniq, toks, fam := col("unique_mass"), col("unique_tokens"), col("ambiguity")
	closing := 0
	for _, r := range rows[1:] {
		u, err := strconv.ParseFloat(r[uniq], 64)
		if err != nil || u <= 0 || u >= 1 {
			t.Errorf("%s r%s: unique mass %q", r[0], r[1], r[uniq])
		}
		if r[fam] == "pp-attachment" && strings.Contains(r[toks], "))))") {
			closing++
			t.Logf("%s r%s: %.3f of the relevance on %q, which the other reading lacks", r[0], r[1], u, r[toks])
		}
	}
	if closing != 2 {
		t.Errorf("the pp pair's readings name no run of closing brackets as unique: %v", rows)
	}
}

// TestReportRefusesOut: a non-empty --out without --force, and an --out
// inside the dataset's folder, exit 2 before anything is loaded or written.
func TestReportRefusesOut(t *testing.T) {
	full := t.TempDir()
	keep := filepath.Join(full, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	manifest := filepath.Join(data, "pairs.jsonl")
	if err := os.WriteFile(manifest, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", "demo", "--out", full}, "not empty"},
		{[]string{"--data", manifest, "--out", filepath.Join(data, "report")}, "inside the dataset"},
		{[]string{"--data", manifest, "--out", data, "--force"}, "inside the dataset"},
		{[]string{"--data", "demo", "--out", t.TempDir(), "--method", "nope"}, "--method"},
		{[]string{"--data", "demo", "--out", t.TempDir(), "--limit", "-1"}, "--limit"},
	} {
		_, stderr, code := cmdtest.RunCLI(t, "", append([]string{"report", "--checkpoint", "demo"}, c.args...)...)
		if code != factory.ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "mine" {
		t.Errorf("the refused --out lost its file: %q, %v", b, err)
	}
	if entries, _ := os.ReadDir(data); len(entries) != 1 {
		t.Errorf("the dataset's folder gained files: %v", entries)
	}
}

// TestReportFlags: the flags reach the options.
func TestReportFlags(t *testing.T) {
	var got *reportcmd.Options
	f := factory.New()
	cmd := reportcmd.NewCmdReport(f, func(o *reportcmd.Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--split", "val", "--out", "x", "--limit", "4", "--batch-pairs", "2", "--force", "--json", "--style", "ptb"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Split != "val" || got.Out != "x" || got.Limit != 4 || got.Batch != 2 || !got.Force || !got.JSON || got.Style != "ptb" {
		t.Errorf("options %+v", got)
	}
}
