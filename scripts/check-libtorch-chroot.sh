#!/usr/bin/env bash
# check-libtorch-chroot.sh: runs every test, and the benchmarks, against
# another Debian's libtorch on the CPU: by default Debian unstable's, the
# newest libtorch 2 Debian has (2.14 when written), where this machine's is
# bookworm's 1.13. The libtorch-2 code paths of the shim (the SDPA kernels,
# the foreach and fused optimizer ops, C++20) otherwise run only on a lent
# GPU machine, and the OpenMP build of libtorch 2 behaves otherwise on the
# CPU (thread counts per thread; its idle threads' spinning).
#
# It makes a minimal Debian SUITE root with debootstrap (once, in ROOTFS),
# installs libtorch-dev, OpenBLAS and g++ there, copies the working tree and
# the binaries `make gpu-bundle GPU_TESTS=all` builds here into it, and runs
# scripts/gpu-check.sh inside it on the CPU: the shim built against that
# libtorch, every test binary, `lavascope bench` on the tiny model. Needs
# root, debootstrap, Go and deb.debian.org; not part of `make test`.
#
# Environment:
#   SUITE    the Debian suite (default sid)
#   ROOTFS   where its root lives (default /srv/lavascope-$SUITE; about 2 GB)
#   OUT      where the logs land (default build/libtorch-$SUITE)
#   GPU_CHECK_HF  1: also run scripts/reference/hf_bench.py there, which needs
#            python3-torch and python3-transformers installed in the root
#            (Debian unstable has them); `make torch` then builds against
#            that PyTorch, as on a GPU machine
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
suite="${SUITE:-sid}"
rootfs="${ROOTFS:-/srv/lavascope-$suite}"
out="${OUT:-$root/build/libtorch-$suite}"
die() {
	echo "check-libtorch-chroot: $*" >&2
	exit 1
}
[[ $(id -u) == 0 ]] || die "needs root (debootstrap, chroot, mount)"
command -v debootstrap >/dev/null || die "needs debootstrap: apt-get install debootstrap"

# A mirror's Release file may be older than its Valid-Until (a frozen mirror);
# the check is about freshness, not integrity, which the signatures keep.
apt=(apt-get -o Acquire::Check-Valid-Until=false)
mkdir -p "$root/build"
if [[ ! -x "$rootfs/usr/bin/apt-get" ]]; then
	echo "debootstrap $suite into $rootfs ..."
	debootstrap --variant=minbase "$suite" "$rootfs" http://deb.debian.org/debian >"$root/build/debootstrap-$suite.log" 2>&1 ||
		die "debootstrap failed (log build/debootstrap-$suite.log)"
fi

mounted=()
cleanup() {
	local i
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}" || true; done
}
trap cleanup EXIT
for m in proc dev; do
	if ! mountpoint -q "$rootfs/$m"; then
		if [[ $m == proc ]]; then mount -t proc proc "$rootfs/proc"; else mount --bind /dev "$rootfs/dev"; fi
		mounted+=("$rootfs/$m")
	fi
done

if [[ ! -x "$rootfs/usr/bin/g++" || ! -e "$rootfs/usr/include/torch/csrc/api/include/torch/version.h" || ! -d "$rootfs/usr/include/gloo" ]]; then
	echo "installing libtorch-dev, OpenBLAS, g++ and Gloo's headers in $rootfs ..."
	log="$root/build/apt-$suite.log"
	{
		chroot "$rootfs" "${apt[@]}" update &&
			chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends \
				libtorch-dev libopenblas0-pthread g++ libgloo-dev
	} >"$log" 2>&1 || die "installing in $rootfs failed (log ${log#"$root"/})"
fi

echo "building the binaries (make gpu-bundle GPU_TESTS=all) ..."
make -C "$root" gpu-bundle GPU_TESTS=all >/dev/null

# The tree as tests see it: the repository at /work/main and, where this
# checkout has it, the shared fixtures beside it.
work="$rootfs/work"
rm -rf "$work"
mkdir -p "$work/main/build"
(cd "$root" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$work/main"
cp -a "$root/build/lavascope" "$root/build/test" "$work/main/build/"
[[ -d "$root/../shared" ]] && cp -a "$root/../shared" "$work/shared"

rc=0
chroot "$rootfs" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=xterm GPU_CHECK_HF="${GPU_CHECK_HF:-0}" bash -c \
	'cd /work/main && GPU_CHECK_DEVICE=cpu GPU_CHECK_QUICK=0 BENCH_CONFIG=tiny BENCH_WARMUP=2 BENCH_REPEAT=5 TEST_TIMEOUT=900 OUT=/work/out scripts/gpu-check.sh' || rc=$?
rm -rf "$out"
mkdir -p "$out"
cp -a "$work/out/." "$out/"
echo "logs: $out"
exit "$rc"
