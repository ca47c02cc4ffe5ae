package trees

import "testing"

func TestMoveKindText(t *testing.T) {
	for k := MovePP; k <= MoveScope; k++ {
		b, err := k.MarshalText()
		var back MoveKind
		if err != nil || back.UnmarshalText(b) != nil || back != k {
			t.Errorf("%v: %q, %v, back %v", k, b, err, back)
		}
	}
	var k MoveKind
	for _, bad := range []string{"", "PP", "MoveKind(0)"} {
		if err := k.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
