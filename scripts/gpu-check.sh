#!/usr/bin/env bash
# gpu-check.sh: the one command to run on a CUDA machine that has PyTorch
# (python3 with torch) and g++ but no Go and no network. It builds the libtorch
# shim against that PyTorch, runs `lavascope doctor` on cuda, every prebuilt
# test binary with LAVASCOPE_TEST_DEVICE=cuda, and the GPU benchmarks, then
# prints a summary. It takes a couple of minutes (budget: under 5).
#
# It expects, beside the sources (scripts/, torch/csrc/, the packages' testdata),
# binaries built on a machine with Go (`make gpu-bundle` does this):
#
#   CGO_ENABLED=0 go build -o build/lavascope ./cmd/lavascope
#   mkdir -p build/test
#   CGO_ENABLED=0 go test -c -o build/test/torch.test ./torch
#
# A test binary build/test/NAME.test is the package whose folder is NAME with
# each '.' read as '/' (loader.synth.test is ./loader/synth) and runs in that
# folder, as `go test` would. To add a package, build its test binary the same
# way; to add benchmarks, add a "NAME:REGEXP" entry to BENCHES below.
#
# Environment: PYTHON (default python3), LIBTORCH (a CUDA libtorch zip instead
# of PyTorch's), GPU_CHECK_LOG (a folder that receives the full logs),
# TEST_TIMEOUT (per test binary, default 150s).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
logdir="${GPU_CHECK_LOG:-$root/build/gpu-check}"
mkdir -p "$logdir"

# Benchmarks to run: test binary name, then a -test.bench expression.
BENCHES=(
	"torch:^Benchmark(TinyOp|Matmul)$"
)

summary=()
failed=0
start_all=$SECONDS

# step NAME LOG CMD...: runs CMD with its output shown and saved in LOG.
step() {
	local name="$1" log="$2"
	shift 2
	local t0=$SECONDS
	echo
	echo "=== $name"
	"$@" 2>&1 | tee "$logdir/$log"
	local rc=${PIPESTATUS[0]}
	local took=$((SECONDS - t0))
	if [[ $rc == 0 ]]; then
		summary+=("ok    $name (${took}s)")
	else
		summary+=("FAIL  $name (exit $rc, ${took}s; log $logdir/$log)")
		failed=$((failed + 1))
	fi
	return "$rc"
}

if ! command -v nvidia-smi >/dev/null 2>&1; then
	echo "gpu-check: nvidia-smi not found; this script is for a CUDA machine" >&2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'

if ! step "build the shim" build-torch.log env FORCE="${FORCE:-0}" "$root/scripts/build-torch.sh"; then
	echo "gpu-check: the shim did not build; nothing else can run" >&2
	printf '%s\n' "${summary[@]}"
	exit 1
fi
grep -q "^device:   CUDA" "$logdir/build-torch.log" || {
	summary+=("FAIL  the libtorch found is CPU-only (see build-torch.log)")
	failed=$((failed + 1))
}

export LAVASCOPE_TORCH_LIB="$root/build/liblavascope_torch.so"
export LAVASCOPE_REQUIRE_TORCH=1
export LAVASCOPE_TEST_DEVICE=cuda

if [[ -x build/lavascope ]]; then
	step "lavascope doctor" doctor.log build/lavascope doctor --device cuda
else
	summary+=("FAIL  build/lavascope missing (build it: CGO_ENABLED=0 go build -o build/lavascope ./cmd/lavascope)")
	failed=$((failed + 1))
fi

shopt -s nullglob
tests=(build/test/*.test)
if [[ ${#tests[@]} == 0 ]]; then
	summary+=("FAIL  no test binaries in build/test (see this script's header)")
	failed=$((failed + 1))
fi
for bin in "${tests[@]}"; do
	name="$(basename "$bin" .test)"
	dir="${name//.//}"
	if [[ ! -d "$dir" ]]; then
		summary+=("FAIL  $bin: package folder $dir missing")
		failed=$((failed + 1))
		continue
	fi
	step "test $name (cuda)" "test-$name.log" \
		bash -c 'cd "$1" && exec "$2" -test.v -test.count=1 -test.timeout="$3"' _ "$dir" "$root/$bin" "${TEST_TIMEOUT:-150s}"
	# go test -v prints one line per test; count them for the summary.
	p=$(grep -c -- '^\s*--- PASS' "$logdir/test-$name.log")
	f=$(grep -c -- '^\s*--- FAIL' "$logdir/test-$name.log")
	s=$(grep -c -- '^\s*--- SKIP' "$logdir/test-$name.log")
	summary+=("      $name: $p passed, $f failed, $s skipped")
done

for b in "${BENCHES[@]}"; do
	name="${b%%:*}"
	expr="${b#*:}"
	bin="build/test/$name.test"
	[[ -x "$bin" ]] || continue
	dir="${name//.//}"
	step "bench $name $expr (cuda)" "bench-$name.log" \
		bash -c 'cd "$1" && exec "$2" -test.run="^$" -test.bench="$3" -test.benchtime=1s' _ "$dir" "$root/$bin" "$expr"
	while read -r line; do summary+=("      $line"); done < <(grep '^Benchmark' "$logdir/bench-$name.log")
done

echo
echo "=== gpu-check summary ($((SECONDS - start_all))s)"
printf '%s\n' "${summary[@]}"
if [[ $failed -gt 0 ]]; then
	echo "gpu-check: $failed step(s) failed"
	exit 1
fi
echo "gpu-check: all passed"
