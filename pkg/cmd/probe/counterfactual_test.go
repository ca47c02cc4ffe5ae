package probe_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

// TestProbeCounterfactualFlags: a bad --ablate, --mask-box or --fill, or
// one without --pair, exits 2 naming the flag (a token past the text's
// end, or a constituent the trees lack, once the tokenizer is loaded).
func TestProbeCounterfactualFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--pair", "pp-00009", "--ablate", "tokens:x"}, "--ablate"},
		{[]string{"--pair", "pp-00009", "--ablate", "words"}, "--ablate"},
		{[]string{"--pair", "pp-00009", "--mask-box", "0"}, "--mask-box"},
		{[]string{"--pair", "pp-00009", "--mask-box", "9"}, "--mask-box"},
		{[]string{"--pair", "pp-00009", "--mask-box", "1", "--fill", "pink"}, "--fill"},
		{[]string{"--swap-images"}, "--pair"},
		{[]string{"--pair", "pp-00009", "--ablate", "tokens:70"}, "--ablate: token 70"},
		{[]string{"--pair", "pp-00009", "--ablate", "constituent:SBAR"}, "--ablate"},
	} {
		args := append([]string{"probe", "--checkpoint", "demo", "--data", "demo"}, tc.args...)
		_, stderr, code := cmdtest.RunCLI(t, "", args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 naming %s", tc.args, code, stderr, tc.want)
		}
	}
}

// TestProbeMaskEvidence is the check: masking reading A's evidence
// box changes its logit for its image, and probe says by how much; the
// other image's column stays as it was.
func TestProbeMaskEvidence(t *testing.T) {
	dev := torchtest.Device(t)
	stdout, stderr, code := cmdtest.RunCLI(t, "", "probe", "--checkpoint", "demo", "--data", "demo", "--pair", "pp-00009",
		"--mask-box", "evidence", "--reading", "a", "--json", "--device", dev.String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r struct {
		Before, After, Delta [][]float64
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(r.Delta) != 2 || len(r.Delta[0]) != 2 {
		t.Fatalf("delta %v, want 2×2", r.Delta)
	}
	if d := r.Delta[0][0]; math.Abs(d) < 1e-3 || math.Abs(r.After[0][0]-r.Before[0][0]-d) > 1e-9 {
		t.Errorf("text A × image A: %g → %g, delta %g; want a change", r.Before[0][0], r.After[0][0], d)
	}
	for tx := range 2 {
		if d := r.Delta[tx][1]; math.Abs(d) > 1e-6 {
			t.Errorf("text %d × image B changed by %g; only image A was masked", tx, d)
		}
	}
}
