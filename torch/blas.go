package torch

import (
	"fmt"
	"path/filepath"
	"strings"
)

var opBLASInfo = newOp("blas_info")

// BLAS is which BLAS the loaded libtorch computes with, as the process
// itself says: the shared objects the dynamic linker mapped, and ATen's
// build settings.
type BLAS struct {
	// Name is OpenBLAS, MKL, BLIS, ATLAS, "reference BLAS", or "" when
	// nothing says.
	Name string
	// Lib is the file that says so: a loaded library's base name, with
	// where Debian's alternatives link point it ("libblas.so.3 →
	// /usr/lib/x86_64-linux-gnu/blas/libblas.so.3"); empty when only the
	// build settings say (a static MKL).
	Lib string
	// BuiltWith is ATen's BLAS_INFO ("open", "mkl", ...), empty when
	// absent.
	BuiltWith string
	// Loaded lists the BLAS and LAPACK libraries of the process.
	Loaded []string
}

// Reference reports whether the BLAS is the unoptimized reference one.
func (b BLAS) Reference() bool { return b.Name == "reference BLAS" }

func (b BLAS) String() string {
	switch {
	case b.Name == "":
		return "unknown (no BLAS library loaded, no BLAS_INFO in libtorch's build settings)"
	case b.Lib == "":
		return fmt.Sprintf("%s (built in: BLAS_INFO=%s)", b.Name, b.BuiltWith)
	}
	return fmt.Sprintf("%s (%s loaded)", b.Name, b.Lib)
}

// LoadedBLAS asks the shim which BLAS this process has: the libraries
// loaded and ATen's build settings ([ParseBLAS]). A shim built before
// the question existed answers with an error that says to rebuild it.
func LoadedBLAS() (BLAS, error) {
	c := getCall()
	defer putCall(c)
	s, err := c.exec(opBLASInfo)
	if err != nil {
		return BLAS{}, fmt.Errorf("torch: %s: %w", opBLASInfo.name, err)
	}
	return ParseBLAS(s, filepath.EvalSymlinks), nil
}

// blasByFile names a BLAS by a library's file name, most specific first.
var blasByFile = []struct{ prefix, name string }{
	{"libopenblas", "OpenBLAS"},
	{"libmkl", "MKL"},
	{"libblis", "BLIS"},
	{"libflame", "BLIS"},
	{"libatlas", "ATLAS"},
	{"libtatlas", "ATLAS"},
	{"libsatlas", "ATLAS"},
}

// ParseBLAS reads the shim's blas_info answer ("loaded: PATH" lines, then
// "config:" and at::show_config()). resolve follows symbolic links (Debian
// links libblas.so.3 to OpenBLAS, ATLAS, BLIS or the reference BLAS through
// its alternatives); it may fail, and then the name alone decides. A
// library named for a BLAS wins over the generic libblas.so, which wins
// over the build settings, since it is what the process really calls.
func ParseBLAS(info string, resolve func(string) (string, error)) BLAS {
	var b BLAS
	loaded, config, _ := strings.Cut(info, "config:\n")
	for line := range strings.SplitSeq(loaded, "\n") {
		if p, ok := strings.CutPrefix(line, "loaded: "); ok && p != "" {
			b.Loaded = append(b.Loaded, p)
		}
	}
	// "BLAS_INFO=open," inside a line of comma-separated settings.
	if _, v, ok := strings.Cut(config, "BLAS_INFO="); ok {
		b.BuiltWith, _, _ = strings.Cut(v, ",")
		b.BuiltWith = strings.TrimSpace(strings.SplitN(b.BuiltWith, "\n", 2)[0])
	}
	for _, want := range blasByFile {
		for _, p := range b.Loaded {
			if strings.HasPrefix(filepath.Base(p), want.prefix) {
				b.Name, b.Lib = want.name, filepath.Base(p)
				return b
			}
		}
	}
	for _, p := range b.Loaded {
		base := filepath.Base(p)
		if !strings.HasPrefix(base, "libblas.so") {
			continue
		}
		target := p
		if r, err := resolve(p); err == nil {
			target = r
		}
		b.Lib = base
		if target != p {
			b.Lib += " → " + target
		}
		switch t := strings.ToLower(target); {
		case strings.Contains(t, "openblas"):
			b.Name = "OpenBLAS"
		case strings.Contains(t, "atlas"):
			b.Name = "ATLAS"
		case strings.Contains(t, "blis"):
			b.Name = "BLIS"
		case strings.Contains(t, "mkl"):
			b.Name = "MKL"
		default:
			b.Name = "reference BLAS"
		}
		return b
	}
	switch b.BuiltWith {
	case "mkl":
		b.Name = "MKL"
	case "open":
		b.Name = "OpenBLAS"
	case "":
	default:
		b.Name = b.BuiltWith
	}
	return b
}
