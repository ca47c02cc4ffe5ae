#!/usr/bin/env bash
# check-shim-compile.sh: compile-checks (g++ -fsyntax-only) the libtorch shim
# against headers this machine's libtorch lacks: libtorch 2.x (the
# libtorch-dev of Debian trixie, 2.6, and of Debian unstable, the newest
# Debian has: 2.14 when written), the optional profiler included, and, for
# the CUDA code (memory statistics, CUDA graphs), the CUDA toolkit's headers
# (Debian's nvidia-cuda-dev, non-free). It is for a machine without a GPU:
# `make torch` only compiles the code paths of the libtorch at hand (Debian
# bookworm's 1.13, CPU), and the libtorch 2 and CUDA paths otherwise meet a
# compiler only on a lent GPU machine.
#
# Each libtorch is checked in the C++ standards scripts/build-torch.sh would
# use for it (C++20 from 2.14 on, whose ATen refuses C++17; else C++17 and
# C++20).
#
# It fetches the .deb files with apt-get from deb.debian.org into a cache
# folder (about 800 MB once, mostly CUDA; CHECK_CACHE, default
# ~/.cache/lavascope/shim-check) and unpacks their headers only; nothing is
# installed. CHECK_SUITES (default "trixie sid") names the Debian suites whose
# libtorch-dev is checked. Needs apt-get, dpkg-deb and g++. Not part of
# `make test`: it needs those downloads.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/cxx-std.sh"
cache="${CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lavascope/shim-check}"
cxx="${CXX:-g++}"
suites=(${CHECK_SUITES:-trixie sid})

fetch() { # fetch SUITE COMPONENTS PACKAGE: the headers of PACKAGE under $cache/SUITE/PACKAGE
	local suite="$1" comps="$2" pkg="$3"
	local dir="$cache/$suite"
	[[ -d "$dir/$pkg/usr/include" ]] && return 0
	mkdir -p "$dir/lists/partial" "$dir/debs"
	echo "deb http://deb.debian.org/debian $suite $comps" >"$dir/sources.list"
	local apt=(-o Dir::Etc::sourcelist="$dir/sources.list" -o Dir::Etc::sourceparts=/dev/null -o Dir::State::Lists="$dir/lists" -o APT::Sandbox::User=root)
	apt-get "${apt[@]}" update >/dev/null
	(cd "$dir/debs" && apt-get "${apt[@]}" download "$pkg" >/dev/null 2>&1)
	mkdir -p "$dir/$pkg"
	dpkg-deb --fsys-tarfile "$dir"/debs/"$pkg"_*.deb | tar -x -C "$dir/$pkg" --wildcards './usr/include/*'
}

fetch bookworm "non-free contrib" nvidia-cuda-dev
cuda="$cache/bookworm/nvidia-cuda-dev/usr/include"
cudaver="$(sed -n 's/^#define CUDA_VERSION \([0-9]*\).*/\1/p' "$cuda/cuda.h")"
# A header that a CPU build of libtorch does not ship (CMake writes it).
stub="$cache/stub"
mkdir -p "$stub/c10/cuda/impl"
printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' >"$stub/c10/cuda/impl/cuda_cmake_macros.h"

failed=0
check() { # check LABEL STD FLAGS...
	local label="$1" std="$2"
	shift 2
	for f in "$root"/torch/csrc/*.cpp; do
		if "$cxx" -std="$std" -fsyntax-only -w "$@" -isystem "$torch" -isystem "$torch/torch/csrc/api/include" "$f"; then
			echo "ok    $(basename "$f") ($label)"
		else
			echo "FAIL  $(basename "$f") ($label)"
			failed=1
		fi
	done
}
for suite in "${suites[@]}"; do
	fetch "$suite" main libtorch-dev
	torch="$cache/$suite/libtorch-dev/usr/include"
	version="$(printf '#include <torch/version.h>\nTORCH_VERSION_MAJOR TORCH_VERSION_MINOR TORCH_VERSION_PATCH\n' |
		"$cxx" -E -P -x c++ -isystem "$torch" -isystem "$torch/torch/csrc/api/include" - | tail -1)"
	read -r major minor patch <<<"$version"
	echo "libtorch headers $major.$minor.$patch (Debian $suite), CUDA headers $cudaver"
	stds=(c++17 c++20)
	[[ "$(cxx_std "$major" "$minor")" == c++20 ]] && stds=(c++20)
	for std in "${stds[@]}"; do
		# Gloo's headers are this machine's (libgloo-dev), not the suite's.
		check "libtorch $major.$minor, CPU, $std" "$std" -DLAVASCOPE_PROFILER -DLAVASCOPE_GLOO -DUSE_C10D_GLOO
		check "libtorch $major.$minor, CUDA + graphs, $std" "$std" -DLAVASCOPE_PROFILER -DLAVASCOPE_CUDA -DLAVASCOPE_GRAPHS -isystem "$stub" -isystem "$cuda"
	done
done
exit "$failed"
