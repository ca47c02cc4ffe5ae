package torchtest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lavascope/lavascope/torch"
)

// EnvRankTest marks a test binary that RunRanks started as a rank.
const EnvRankTest = "LAVASCOPE_TEST_RANK_OF"

// IsRank reports whether this test binary is a rank that RunRanks started.
func IsRank() bool { return os.Getenv(EnvRankTest) != "" }

// RequireGloo loads the shim and skips the test when it has no Gloo.
func RequireGloo(t testing.TB) {
	t.Helper()
	Require(t)
	if gloo, _ := torch.DistBackends(); !gloo {
		t.Skip("the shim has no Gloo (build it with libgloo-dev installed)")
	}
}

// RunRanks runs the test named test of this test binary as n processes,
// ranks 0..n-1 of a group on the loopback at a free port (torchrun's
// variables set, and env), and fails t unless every one passes within
// limit. It returns their outputs.
func RunRanks(t testing.TB, n int, test string, limit time.Duration, env ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cmds := make([]*exec.Cmd, n)
	outs := make([]*strings.Builder, n)
	for r := range n {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+test+"$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), EnvRankTest+"="+t.Name(), "RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(n),
			"LOCAL_RANK="+strconv.Itoa(r), "MASTER_ADDR=127.0.0.1", "MASTER_PORT="+port)
		cmd.Env = append(cmd.Env, env...)
		outs[r] = &strings.Builder{}
		cmd.Stdout, cmd.Stderr = outs[r], outs[r]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[r] = cmd
	}
	res := make([]string, n)
	failed := false
	for r, cmd := range cmds {
		err := cmd.Wait()
		res[r] = outs[r].String()
		if err != nil || !strings.Contains(res[r], "--- PASS: "+test) {
			t.Errorf("rank %d of %s: %v\n%s", r, test, err, res[r])
			failed = true
		}
	}
	if failed {
		t.FailNow()
	}
	return res
}

// JoinRanks joins the Gloo group of the ranks RunRanks started (skipping
// the test in a binary it did not start); the group is closed when the
// test ends.
func JoinRanks(t testing.TB) *torch.ProcessGroup {
	t.Helper()
	if !IsRank() {
		t.Skip("a rank of a test that RunRanks starts")
	}
	Require(t)
	o, ok, err := torch.DistOptionsFromEnv(os.LookupEnv)
	if err != nil || !ok {
		t.Fatalf("%v (set %v)", err, ok)
	}
	o.Backend, o.Timeout = torch.Gloo, 2*time.Minute
	g, err := torch.NewProcessGroup(o, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}
