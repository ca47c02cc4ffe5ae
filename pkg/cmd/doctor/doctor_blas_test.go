package doctor

import (
	"strings"
	"testing"

	"github.com/lavascope/lavascope/torch"
)

func TestSlowMatmul(t *testing.T) {
	tests := []struct {
		name    string
		blas    *torch.BLAS
		load    string
		want    string
		install bool
	}{
		{"OpenBLAS, busy", &torch.BLAS{Name: "OpenBLAS", Lib: "libopenblas.so.0"}, "3.52", "slow for OpenBLAS: the CPU looks busy (load average 3.52)", false},
		{"MKL, load unknown", &torch.BLAS{Name: "MKL", BuiltWith: "mkl"}, "", "the CPU looks busy (load average unknown)", false},
		{"reference BLAS", &torch.BLAS{Name: "reference BLAS", Lib: "libblas.so.3"}, "0.10", "reference-BLAS speed", true},
		{"not asked", nil, "0.10", "if `blas` above is not OpenBLAS", true},
		{"nothing known", &torch.BLAS{}, "", "load average unknown", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := slowMatmul(tc.blas, tc.load)
			if !strings.Contains(got, tc.want) || strings.Contains(got, "install OpenBLAS") != tc.install {
				t.Errorf("got %q, want %q and install advice %v", got, tc.want, tc.install)
			}
		})
	}
}

func TestLoadAverage(t *testing.T) {
	// Either a number or nothing: never text from elsewhere.
	if l := loadAverage(); strings.Trim(l, "0123456789.") != "" {
		t.Errorf("load average %q", l)
	}
}
