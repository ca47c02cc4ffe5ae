#!/usr/bin/env bash
# gpu-check.sh: the one command to run on a CUDA machine that has PyTorch
# (python3 with torch, and transformers for the reference timings) and g++
# but no Go and no network. It builds the libtorch shim against that PyTorch,
# runs `lavascope doctor` on cuda, then `lavascope bench` and
# scripts/reference/hf_bench.py (transformers) on the same card and one
# side-by-side table (`lavascope bench compare`), then the prebuilt test
# binaries with LAVASCOPE_TEST_DEVICE=cuda, a short `lavascope train` with
# --cuda-graphs --tf32 as a user would run it, one with NCCL as one rank
# (where the shim has NCCL), every row again under
# libtorch's profiler (where the time goes: host ops, GPU kernels) and the GPU
# microbenchmarks.
#
# A lent card is scarce, so the table comes first, and the plain lavascope
# rows before the reference and the optional ones (CUDA graphs) that could
# fail or hang; every step runs under a timeout cut to what is left of the
# whole run's budget (GPU_CHECK_BUDGET), and a step with too little left is
# skipped with a note, so the summary and the table are always printed within
# the budget. Measured on an H200 in the default quick mode: 100 to 116 s
# in all, the profiles included.
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
# Environment:
#   PYTHON          python with torch (+ transformers), default python3
#   LIBTORCH        a CUDA libtorch zip instead of PyTorch's
#   OUT             folder for the raw outputs (logs, JSON records, the table
#                   as compare.txt and, for docs/performance.md, compare.md);
#                   GPU_CHECK_LOG overrides it; default build/gpu-check
#   GPU_CHECK_QUICK 1 (default): only the test binaries in QUICK_TESTS, with
#                   -test.short and without the tests in QUICK_SKIP, short
#                   microbenchmarks; 0: every test binary, everything
#   BENCH_WARMUP, BENCH_REPEAT   runs of each bench row (default 3 and 10)
#   BENCH_CONFIG    the model of the bench rows (default vit-b-32)
#   GPU_CHECK_BEST  1 (default, CUDA only): also time lavascope with --tf32
#                   --cuda-graphs, a column of its own in the table
#   GPU_CHECK_BF16  1: also time lavascope's relevance and scoring in bf16
#   GPU_CHECK_MIXED 1 (default on CUDA): also time the rows in bf16 mixed
#                   precision (--precision bf16-mixed, fp32 masters), each
#                   record stating its accuracy against float32
#   GPU_CHECK_LARGE 1 (default on CUDA): also time ViT-L/14 (relevance and
#                   training, lavascope and the reference), 3 runs each
#   GPU_CHECK_PROFILE  runs of each row under libtorch's profiler, after the
#                   tests (default 3; 0: none): where the time goes
#   GPU_CHECK_TRACES  1: also write those runs as timelines (Chrome's trace
#                   format; 43 MB for the tiny model's rows on a 2-core CPU)
#                   under traces/ and traces-best/
#   GPU_CHECK_HF    0: leave out the transformers reference (no PyTorch there)
#   GPU_CHECK_DEVICE  cuda (default); cpu runs the same steps on the CPU, to
#                   try the script on a machine without a GPU
#   TEST_TIMEOUT    seconds per test binary (default 60 quick, 150 full)
#   GPU_CHECK_BUDGET  seconds for the whole run (default 540 on CUDA, under a
#                   lent machine's 600 s per command; 0, the CPU's default:
#                   no limit)
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
logdir="${GPU_CHECK_LOG:-${OUT:-$root/build/gpu-check}}"
mkdir -p "$logdir"
quick="${GPU_CHECK_QUICK:-1}"
python="${PYTHON:-python3}"
warmup="${BENCH_WARMUP:-3}"
repeat="${BENCH_REPEAT:-10}"
config="${BENCH_CONFIG:-vit-b-32}"
device="${GPU_CHECK_DEVICE:-cuda}"

# Benchmarks to run: test binary name, then a -test.bench expression.
BENCHES=(
	"torch:^Benchmark(TinyOp|Matmul)$"
	# issue 22: key press -> frame with the new heatmap, real engine, the
	# split's sweep running (p50/p95/max per key).
	"pkg.cmd.explore:^BenchmarkExplorerLatency$"
)
benchtime=1s

# Quick mode: the packages whose tests exercise the GPU (NAME, or
# NAME:REGEXP to run only the tests that match), and the tests too slow for
# the lease (training runs that only show learning).
QUICK_TESTS=(torch model explain bench "tui.torchengine:^(TestTorchEngine|TestOpenTorch)")
QUICK_SKIP='^(TestTrainLearnsTrees)$'
test_flags=()
if [[ $quick == 1 ]]; then
	test_flags=(-test.short "-test.skip=$QUICK_SKIP")
	benchtime=300ms
fi
test_timeout="${TEST_TIMEOUT:-$([[ $quick == 1 ]] && echo 60 || echo 150)}"
test_timeout="${test_timeout%s}"
[[ $test_timeout =~ ^[0-9]+$ ]] || { echo "gpu-check: TEST_TIMEOUT=$TEST_TIMEOUT: want seconds" >&2; exit 2; }
budget="${GPU_CHECK_BUDGET:-$([[ $device == cpu ]] && echo 0 || echo 540)}"
# What the summary and the table need after the last step.
reserve=15

summary=()
failed=0
skipped=0
start_all=$SECONDS

# left: seconds of the budget a step may still take (a large number without
# a budget).
left() {
	if ((budget > 0)); then echo $((budget - reserve - (SECONDS - start_all))); else echo 86400; fi
}

# step NAME LOG CAP CMD...: runs CMD with its output shown and saved in LOG,
# killed after CAP seconds (0: none) or when the run's budget is spent,
# whichever comes first. With under 20 s of the budget left it is skipped.
step() {
	local name="$1" log="$2" cap="$3"
	shift 3
	if ((budget > 0)); then
		local left
		left=$(left)
		if ((left < 20)); then
			summary+=("skip  $name (GPU_CHECK_BUDGET=${budget}s spent)")
			skipped=$((skipped + 1))
			return 1
		fi
		((cap == 0 || cap > left)) && cap=$left
	fi
	local t0=$SECONDS
	rm -f "$logdir/$log"
	echo
	echo "=== $name"
	if ((cap > 0)); then
		timeout -k 5 "$cap" "$@" 2>&1 | tee "$logdir/$log"
	else
		"$@" 2>&1 | tee "$logdir/$log"
	fi
	local rc=${PIPESTATUS[0]}
	local took=$((SECONDS - t0))
	if [[ $rc == 0 ]]; then
		summary+=("ok    $name (${took}s)")
	elif [[ $rc == 124 || $rc == 137 ]]; then
		summary+=("FAIL  $name (killed after ${cap}s; log $logdir/$log)")
		failed=$((failed + 1))
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

if ! step "build the shim" build-torch.log 0 env FORCE="${FORCE:-0}" "$root/scripts/build-torch.sh"; then
	echo "gpu-check: the shim did not build; nothing else can run" >&2
	printf '%s\n' "${summary[@]}"
	exit 1
fi
[[ $device == cpu ]] || grep -q "^device:   CUDA" "$logdir/build-torch.log" || {
	summary+=("FAIL  the libtorch found is CPU-only (see build-torch.log)")
	failed=$((failed + 1))
}

export LAVASCOPE_TORCH_LIB="$root/build/liblavascope_torch.so"
export LAVASCOPE_REQUIRE_TORCH=1
export LAVASCOPE_TEST_DEVICE="$device"

if [[ -x build/lavascope ]]; then
	step "lavascope doctor" doctor.log 60 build/lavascope doctor --device "$device"
else
	summary+=("FAIL  build/lavascope missing (build it: CGO_ENABLED=0 go build -o build/lavascope ./cmd/lavascope)")
	failed=$((failed + 1))
fi

# lavascope bench and the transformers reference, one after the other on the
# same card, then one table.
lv_json="$logdir/lavascope-bench.jsonl"
hf_json="$logdir/hf-bench.jsonl"
rm -f "$lv_json" "$hf_json" "$logdir/compare.txt"
bench_args=(--config "$config" --warmup "$warmup" --repeat "$repeat" --json)
# The options a PyTorch user could switch on too: TF32 and CUDA graphs (the
# training rows take fused AdamW either way); the "best" rows and profiles.
best_flags=(--tf32 --cuda-graphs)
# lv_bench KIND TAG FLAGS...: `lavascope bench KIND FLAGS...` appended to
# lv_json, its log lavascope-bench-KIND[-TAG].log. Each kind runs in a process
# of its own, so that a row that fails (or a shim that crashes) costs that
# kind's later rows, not the others.
lv_bench() {
	local kind="$1" tag="$2"
	shift 2
	step "lavascope bench $kind${*:+ $*} ($config, $device)" "lavascope-bench-$kind${tag:+-$tag}.log" 90 \
		bash -c 'out="$1"; shift; exec "$@" >>"$out"' _ "$lv_json" \
		build/lavascope bench "$kind" --device "$device" "$@" "${bench_args[@]}"
}
if [[ -x build/lavascope ]]; then
	for kind in explain score train; do lv_bench "$kind" ""; done
fi
if [[ ${GPU_CHECK_HF:-1} == 1 ]]; then
	step "hf_bench.py ($config, $device; transformers)" hf-bench.log 240 \
		bash -c 'out="$1"; shift; exec "$@" >"$out"' _ "$hf_json" \
		"$python" scripts/reference/hf_bench.py --device "$device" "${bench_args[@]}"
fi
if [[ -x build/lavascope ]]; then
	if [[ $device == cuda* && ${GPU_CHECK_BEST:-1} == 1 ]]; then
		for kind in explain score train; do lv_bench "$kind" best "${best_flags[@]}"; done
	fi
	if [[ ${GPU_CHECK_BF16:-0} == 1 ]]; then
		for kind in explain score; do lv_bench "$kind" bf16 --dtype bf16; done
	fi
	if [[ ${GPU_CHECK_MIXED:-$([[ $device == cuda* ]] && echo 1 || echo 0)} == 1 ]]; then
		for kind in explain score train; do lv_bench "$kind" mixed --precision bf16-mixed; done
	fi
fi
if [[ ${GPU_CHECK_LARGE:-$([[ $device == cuda* ]] && echo 1 || echo 0)} == 1 ]]; then
	# The same rows for ViT-L/14, fewer runs: the issue's row is relevance
	# of one pair and training at 64 items against the reference's best.
	saved=("${bench_args[@]}")
	bench_args=(--config vit-l-14 --warmup 1 --repeat 3 --json)
	if [[ -x build/lavascope ]]; then
		for kind in explain train; do lv_bench "$kind" vit-l-14; done
		[[ $device == cuda* && ${GPU_CHECK_BEST:-1} == 1 ]] && lv_bench train vit-l-14-best "${best_flags[@]}"
	fi
	if [[ ${GPU_CHECK_HF:-1} == 1 ]]; then
		step "hf_bench.py (vit-l-14, $device; transformers)" hf-bench-vit-l-14.log 180 \
			bash -c 'out="$1"; shift; exec "$@" >>"$out"' _ "$hf_json" \
			"$python" scripts/reference/hf_bench.py --device "$device" "${bench_args[@]}"
	fi
	bench_args=("${saved[@]}")
fi
compare=()
for f in "$hf_json" "$lv_json"; do
	[[ -s $f ]] && compare+=("$f")
done
if [[ -x build/lavascope && ${#compare[@]} -gt 0 ]]; then
	echo
	echo "=== lavascope vs Hugging Face, same card (median of $repeat runs after $warmup warm-up)"
	build/lavascope bench compare "${compare[@]}" | tee "$logdir/compare.txt"
	build/lavascope bench compare --markdown "${compare[@]}" >"$logdir/compare.md"
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
	run_flags=()
	if [[ $quick == 1 ]]; then
		entry=""
		for q in "${QUICK_TESTS[@]}"; do
			[[ "${q%%:*}" == "$name" ]] && entry="$q"
		done
		if [[ -z $entry ]]; then
			summary+=("skip  test $name (quick mode; GPU_CHECK_QUICK=0 runs it)")
			continue
		fi
		[[ $entry == *:* ]] && run_flags=("-test.run=${entry#*:}")
	fi
	if [[ ! -d "$dir" ]]; then
		summary+=("FAIL  $bin: package folder $dir missing")
		failed=$((failed + 1))
		continue
	fi
	# Go's own timeout comes first (it prints every goroutine's stack), also
	# where the budget cuts the step short.
	t=$test_timeout
	(($(left) - 10 < t)) && t=$(($(left) - 10))
	step "test $name ($device)" "test-$name.log" $((t + 10)) \
		bash -c 'cd "$1" && shift && exec "$@"' _ "$dir" "$root/$bin" -test.v -test.count=1 -test.timeout="${t}s" ${test_flags[@]+"${test_flags[@]}"} ${run_flags[@]+"${run_flags[@]}"}
	[[ -f "$logdir/test-$name.log" ]] || continue
	# go test -v prints one line per test; count them for the summary.
	p=$(grep -c -- '^\s*--- PASS' "$logdir/test-$name.log")
	f=$(grep -c -- '^\s*--- FAIL' "$logdir/test-$name.log")
	s=$(grep -c -- '^\s*--- SKIP' "$logdir/test-$name.log")
	summary+=("      $name: $p passed, $f failed, $s skipped")
done

# What a user fine-tunes with, end to end: the demo's data, a tiny model, the
# best variant's options (the step graph and TF32) where there is CUDA.
if [[ -x build/lavascope ]]; then
	train_flags=()
	[[ $device == cuda* ]] && train_flags=("${best_flags[@]}")
	run_dir="$(mktemp -d)"
	step "lavascope train${train_flags[*]:+ ${train_flags[*]}} (demo data, tiny, $device)" train.log 90 \
		build/lavascope train --data demo --init tiny --learn-vocab 200 --steps 40 --eval-every 20 --batch-pairs 2 \
		--out "$run_dir/run" --device "$device" --progress lines ${train_flags[@]+"${train_flags[@]}"}
	rm -rf "$run_dir"
fi

# Data-parallel training through NCCL (docs/distributed.md), as one rank: the
# process group, the gathered loss and the all-reduce on the card. Several
# GPUs' timings need a machine that has them. A shim without NCCL (its
# headers did not compile, or no CUDA) is a note, not a failure.
if [[ -x build/lavascope && $device == cuda* ]]; then
	if build/lavascope doctor 2>/dev/null | grep -q 'distributed .*nccl'; then
		run_dir="$(mktemp -d)"
		step "lavascope train --nproc-per-node 1 --dist-backend nccl (demo data, tiny, one rank)" train-nccl.log 90 \
			build/lavascope train --data demo --init tiny --learn-vocab 200 --steps 20 --eval-every 10 --batch-pairs 2 \
			--out "$run_dir/run" --device "$device" --progress lines --nproc-per-node 1 --dist-backend nccl
		rm -rf "$run_dir"
	else
		summary+=("skip  train with NCCL: the shim has no NCCL (lavascope doctor's distributed line says what it has)")
		skipped=$((skipped + 1))
	fi
fi

# Where each row's time goes (host ops, GPU kernels; bench --profile), in
# processes of their own after the tests, so that the profiler's CUDA tracing
# touches neither the timed rows nor the tests. With the options too: what
# CUDA graphs leave is the card's own time. The summary gets each row's line
# on the host's time and the card's busy time.
profile_runs="${GPU_CHECK_PROFILE:-3}"
if [[ -x build/lavascope && $profile_runs -gt 0 ]]; then
	variants=("")
	[[ $device == cuda* && ${GPU_CHECK_BEST:-1} == 1 ]] && variants+=(best)
	for tag in "${variants[@]}"; do
		flags=()
		[[ $tag == best ]] && flags=("${best_flags[@]}")
		[[ ${GPU_CHECK_TRACES:-0} == 1 ]] && flags+=(--profile-trace "$logdir/traces${tag:+-$tag}")
		for kind in explain score train; do
			log="profile-$kind${tag:+-$tag}.log"
			step "lavascope bench $kind --profile $profile_runs${flags[*]:+ ${flags[*]}} ($config, $device)" "$log" 90 \
				build/lavascope bench "$kind" --device "$device" --config "$config" --warmup 2 --repeat 1 --profile "$profile_runs" ${flags[@]+"${flags[@]}"}
			[[ -f "$logdir/$log" ]] || continue
			while read -r line; do summary+=("      $line"); done < <(awk -v v="${tag:-plain}" '/^profile of /{w=$3} /^  host: /{sub(/^  /, ""); print w " (" v "): " $0}' "$logdir/$log")
		done
	done
fi

for b in "${BENCHES[@]}"; do
	name="${b%%:*}"
	expr="${b#*:}"
	bin="build/test/$name.test"
	[[ -x "$bin" ]] || continue
	dir="${name//.//}"
	step "bench $name $expr ($device)" "bench-$name.log" 120 \
		bash -c 'cd "$1" && exec "$2" -test.run="^$" -test.bench="$3" -test.benchtime="$4"' _ "$dir" "$root/$bin" "$expr" "$benchtime"
	[[ -f "$logdir/bench-$name.log" ]] || continue
	while read -r line; do summary+=("      $line"); done < <(grep '^Benchmark' "$logdir/bench-$name.log")
done

echo
echo "=== gpu-check summary ($((SECONDS - start_all))s)"
printf '%s\n' "${summary[@]}"
[[ -s $logdir/compare.txt ]] && cat "$logdir/compare.txt"
echo "raw outputs: $logdir"
((skipped == 0)) || echo "gpu-check: $skipped step(s) not run: the budget (GPU_CHECK_BUDGET=${budget}s) was spent"
if [[ $failed -gt 0 ]]; then
	echo "gpu-check: $failed step(s) failed"
	exit 1
fi
((skipped == 0)) || exit 1
echo "gpu-check: all passed"
