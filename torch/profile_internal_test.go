package torch

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseProfile(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []ProfileEvent
		err      string
	}{
		{name: "empty", in: ""},
		{
			name: "host and gpu",
			in:   "0\t7\t1000\t250\taten::mm\n1\t18446744073709551615\t1100\t90\tvoid gemm<float>(int, int)\n",
			want: []ProfileEvent{
				{Name: "aten::mm", Thread: 7, Start: 1000, Duration: 250},
				{Name: "void gemm<float>(int, int)", GPU: true, Thread: 1<<64 - 1, Start: 1100, Duration: 90},
			},
		},
		{name: "empty name", in: "0\t1\t5\t0\t\n", want: []ProfileEvent{{Thread: 1, Start: 5}}},
		{name: "four fields", in: "0\t1\t2\t3\n", err: "event 1: 4 fields"},
		{name: "bad device", in: "0\t1\t2\t3\ta\n2\t1\t2\t3\tb\n", err: "event 2: device 2"},
		{name: "negative duration", in: "1\t1\t2\t-3\tk\n", want: []ProfileEvent{{Name: "k", GPU: true, Thread: 1, Start: 2, Duration: -3}}},
		{name: "not a number", in: "0\tx\t2\t3\ta\n", err: "event 1: strconv.ParseUint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProfile(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseProfile(f *testing.F) {
	f.Add("0\t7\t1000\t250\taten::mm\n1\t3\t1100\t90\tkernel\n")
	f.Add("0\t1\t2\t3\ta\tb\n")
	f.Fuzz(func(t *testing.T, s string) {
		evs, err := parseProfile(s)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, e := range evs {
			if strings.ContainsAny(e.Name, "\n") {
				t.Fatalf("accepted %+v", e)
			}
			dev := 0
			if e.GPU {
				dev = 1
			}
			fmt.Fprintf(&b, "%d\t%d\t%d\t%d\t%s\n", dev, e.Thread, int64(e.Start/time.Nanosecond), int64(e.Duration), e.Name)
		}
		again, err := parseProfile(b.String())
		if err != nil || fmt.Sprint(again) != fmt.Sprint(evs) {
			t.Fatalf("round trip: %v, %+v != %+v", err, again, evs)
		}
	})
}
