#!/usr/bin/env bash
# check-shim-compile.sh: compile-checks (g++ -fsyntax-only) the libtorch shim
# against headers this machine's libtorch lacks: libtorch 2.x (Debian
# trixie's libtorch-dev) and, for the CUDA code (memory statistics, CUDA
# graphs), the CUDA toolkit's headers (Debian's nvidia-cuda-dev, non-free).
# It is for a machine without a GPU: `make torch` only compiles the code paths
# of the libtorch at hand (Debian bookworm's 1.13, CPU), and the libtorch 2 and
# CUDA paths otherwise meet a compiler only on a lent GPU machine.
#
# It fetches the two .deb files with apt-get from deb.debian.org into a cache
# folder (about 780 MB once; CHECK_CACHE, default ~/.cache/lavascope/shim-check)
# and unpacks their headers only; nothing is installed. Needs apt-get, dpkg-deb
# and g++. Not part of `make test`: it needs those downloads.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lavascope/shim-check}"
cxx="${CXX:-g++}"
mkdir -p "$cache/lists/partial" "$cache/debs"

fetch() { # fetch SUITE COMPONENTS PACKAGE: the .deb of PACKAGE, unpacked under $cache/PACKAGE
	local suite="$1" comps="$2" pkg="$3"
	local list="$cache/$suite.list"
	[[ -d "$cache/$pkg/usr/include" ]] && return 0
	echo "deb http://deb.debian.org/debian $suite $comps" >"$list"
	local apt=(-o Dir::Etc::sourcelist="$list" -o Dir::Etc::sourceparts=/dev/null -o Dir::State::Lists="$cache/lists")
	apt-get "${apt[@]}" update >/dev/null
	(cd "$cache/debs" && apt-get "${apt[@]}" download "$pkg" >/dev/null 2>&1)
	mkdir -p "$cache/$pkg"
	dpkg-deb --fsys-tarfile "$cache"/debs/"$pkg"_*.deb | tar -x -C "$cache/$pkg" --wildcards './usr/include/*'
}

fetch trixie main libtorch-dev
fetch bookworm "non-free contrib" nvidia-cuda-dev
torch="$cache/libtorch-dev/usr/include"
cuda="$cache/nvidia-cuda-dev/usr/include"
# A header that a CPU build of libtorch does not ship (CMake writes it).
stub="$cache/stub"
mkdir -p "$stub/c10/cuda/impl"
printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' >"$stub/c10/cuda/impl/cuda_cmake_macros.h"

version="$(printf '#include <torch/version.h>\nTORCH_VERSION\n' | "$cxx" -E -P -x c++ -isystem "$torch" -isystem "$torch/torch/csrc/api/include" - | tail -1 | tr -d '"')"
cudaver="$(sed -n 's/^#define CUDA_VERSION \([0-9]*\).*/\1/p' "$cuda/cuda.h")"
echo "libtorch headers $version, CUDA headers $cudaver"
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
check "libtorch $version, CPU, C++17" c++17
check "libtorch $version, CUDA + graphs, C++17" c++17 -DLAVASCOPE_CUDA -DLAVASCOPE_GRAPHS -isystem "$stub" -isystem "$cuda"
# build-torch.sh compiles as C++20 for libtorch 2.12 and later.
check "libtorch $version, CUDA + graphs, C++20" c++20 -DLAVASCOPE_CUDA -DLAVASCOPE_GRAPHS -isystem "$stub" -isystem "$cuda"
exit "$failed"
