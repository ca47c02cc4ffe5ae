#!/usr/bin/env bash
# build-torch.sh compiles lavascope's libtorch shim (torch/csrc/*.cpp) into
# build/liblavascope_torch.so against the libtorch this machine has, looked for
# in this order:
#
#   1. $LIBTORCH: an unpacked libtorch zip (include/, lib/);
#   2. the PyTorch of `${PYTHON:-python3}` (its include/ and lib/ folders and
#      its _GLIBCXX_USE_CXX11_ABI);
#   3. Debian's libtorch-dev (/usr/include/torch, the multiarch lib folder).
#
# The shim gets an rpath to that libtorch. When the libtorch has CUDA
# (libtorch_cuda.so beside libtorch_cpu.so) the CUDA libraries are linked with
# -Wl,--no-as-needed (otherwise the linker drops them and CUDA is silently
# absent) and LAVASCOPE_CUDA is defined when cuda_runtime_api.h is found, which
# enables the memory statistics.
#
# It rebuilds only when the sources, this script, the compiler or the libtorch
# changed (a hash kept in build/liblavascope_torch.stamp); FORCE=1 rebuilds.
# Environment: LIBTORCH, PYTHON, CXX, CUDA_HOME, BUILD_DIR (default <repo>/build).
set -euo pipefail
trap 'echo "build-torch: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
out="$build/liblavascope_torch.so"
stamp="$build/liblavascope_torch.stamp"
cxx="${CXX:-g++}"
python="${PYTHON:-python3}"

die() {
	echo "build-torch: $*" >&2
	exit 1
}

command -v "$cxx" >/dev/null 2>&1 || die "no C++ compiler ($cxx); install one: apt-get install g++"

tried=()
src=""      # which libtorch, in words
incs=()     # include folders
libdir=""   # folder of libtorch_cpu.so
abi=""      # _GLIBCXX_USE_CXX11_ABI, empty = compiler default
pyver=""    # torch.__version__ when it came from Python

abi_of_lib() {
	# A libtorch built with the new C++11 ABI exports __cxx11 symbols.
	if command -v nm >/dev/null 2>&1 && nm -D --defined-only "$1/libc10.so" 2>/dev/null | grep -q __cxx11; then
		echo 1
	elif command -v nm >/dev/null 2>&1; then
		echo 0
	fi
}

if [[ -n "${LIBTORCH:-}" ]]; then
	if [[ -f "$LIBTORCH/lib/libtorch_cpu.so" && -d "$LIBTORCH/include/torch/csrc/api/include" ]]; then
		src="libtorch at \$LIBTORCH=$LIBTORCH"
		incs=("$LIBTORCH/include" "$LIBTORCH/include/torch/csrc/api/include")
		libdir="$LIBTORCH/lib"
		abi="$(abi_of_lib "$libdir")"
	else
		die "\$LIBTORCH=$LIBTORCH does not look like an unpacked libtorch zip (no lib/libtorch_cpu.so or include/torch/csrc/api/include)"
	fi
fi

if [[ -z "$src" ]]; then
	tried+=("\$LIBTORCH (unset)")
	if command -v "$python" >/dev/null 2>&1; then
		if info="$("$python" -c '
import os, torch, torch.utils
d = os.path.dirname(torch.__file__)
print(os.path.join(d, "include"))
print(os.path.join(d, "lib"))
print(int(torch._C._GLIBCXX_USE_CXX11_ABI))
print(torch.__version__)
print(torch.utils.cmake_prefix_path)
' 2>/dev/null)"; then
			mapfile -t f <<<"$info"
			if [[ -f "${f[1]}/libtorch_cpu.so" && -d "${f[0]}/torch/csrc/api/include" ]]; then
				src="PyTorch of $python ($(dirname "${f[0]}"))"
				incs=("${f[0]}" "${f[0]}/torch/csrc/api/include")
				libdir="${f[1]}"
				abi="${f[2]}"
				pyver="${f[3]}"
			else
				tried+=("PyTorch of $python at $(dirname "${f[0]}") (no C++ headers or libtorch_cpu.so)")
			fi
		else
			tried+=("PyTorch of $python (import torch failed)")
		fi
	else
		tried+=("PyTorch of $python (no $python)")
	fi
fi

if [[ -z "$src" ]]; then
	multiarch="$("$cxx" -print-multiarch 2>/dev/null || true)"
	for d in "/usr/lib/$multiarch" /usr/lib64 /usr/lib; do
		if [[ -f /usr/include/torch/csrc/api/include/torch/version.h && -e "$d/libtorch_cpu.so" ]]; then
			src="Debian libtorch-dev (/usr/include/torch, $d)"
			incs=("/usr/include" "/usr/include/torch/csrc/api/include")
			libdir="$d"
			break
		fi
	done
	[[ -n "$src" ]] || tried+=("Debian libtorch-dev (/usr/include/torch/csrc/api/include/torch/version.h and libtorch_cpu.so)")
fi

if [[ -z "$src" ]]; then
	{
		echo "build-torch: no libtorch found. Looked for:"
		for t in "${tried[@]}"; do echo "  - $t"; done
		echo "Install one of:"
		echo "  - Debian/Ubuntu (CPU):  apt-get install libtorch-dev libopenblas0-pthread"
		echo "  - PyTorch for $python:  pip install torch   (CUDA wheels give a CUDA shim)"
		echo "  - the libtorch zip from pytorch.org, unpacked, then: LIBTORCH=/path/to/libtorch make torch"
	} >&2
	exit 1
fi

verh=""
for i in "${incs[@]}"; do
	if [[ -f "$i/torch/version.h" ]]; then verh="$i/torch/version.h"; fi
done
[[ -n "$verh" ]] || die "found $src but not torch/version.h under ${incs[*]}"
# The preprocessor reads the version as the shim will (the header may
# include others, so it gets every include folder).
iflags=()
for i in "${incs[@]}"; do [[ "$i" == /usr/include ]] || iflags+=(-I"$i"); done
version="$(printf '#include <torch/version.h>\nTORCH_VERSION_MAJOR.TORCH_VERSION_MINOR.TORCH_VERSION_PATCH\n' |
	"$cxx" -E -P -x c++ "${iflags[@]}" - 2>/dev/null | tr -d ' ' | tail -1 || true)"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || version="unknown (could not preprocess $verh)"

cuda=0
cudadefs=()
cudalibs=()
cudanote=""
if [[ -e "$libdir/libtorch_cuda.so" ]]; then
	cuda=1
	cudalibs=(-Wl,--no-as-needed -ltorch_cuda)
	[[ -e "$libdir/libc10_cuda.so" ]] && cudalibs+=(-lc10_cuda)
	# cuda_runtime_api.h: the toolkit, or the headers of PyTorch's nvidia wheels.
	cudainc=""
	cands=()
	[[ -n "${CUDA_HOME:-}" ]] && cands+=("$CUDA_HOME/include")
	cands+=(/usr/local/cuda/include)
	site="$(dirname "$(dirname "$libdir")")"
	for d in "$site"/nvidia/*/include "$site"/nvidia/*/*/include; do cands+=("$d"); done
	for d in "${cands[@]}"; do
		if [[ -f "$d/cuda_runtime_api.h" ]]; then
			cudainc="$d"
			break
		fi
	done
	cudart=""
	for d in "$libdir" "$site"/nvidia/*/lib "$site"/nvidia/*/*/lib ${CUDA_HOME:+"$CUDA_HOME/lib64"} /usr/local/cuda/lib64; do
		for f in "$d"/libcudart.so.[0-9]* "$d"/libcudart.so; do
			if [[ -f "$f" ]]; then
				cudart="$f"
				break 2
			fi
		done
	done
	if [[ -n "$cudainc" && -n "$cudart" ]]; then
		cudadefs=(-DLAVASCOPE_CUDA -I"$cudainc")
		cudalibs+=("$cudart" -Wl,-rpath,"$(dirname "$cudart")")
		cudanote="CUDA (memory statistics on; cuda_runtime_api.h from $cudainc, $(basename "$cudart"))"
	else
		cudanote="CUDA (memory statistics off: cuda_runtime_api.h or libcudart not found; set CUDA_HOME)"
	fi
	cudalibs+=(-Wl,--as-needed)
fi

abiflags=()
[[ -n "$abi" ]] && abiflags=(-D_GLIBCXX_USE_CXX11_ABI="$abi")

# The C++ standard of the libtorch's headers (scripts/cxx-std.sh);
# LAVASCOPE_CXX_STD overrides.
source "$root/scripts/cxx-std.sh"
std=c++17
if [[ "$version" =~ ^([0-9]+)\.([0-9]+)\. ]]; then
	std="$(cxx_std "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}")"
fi
std="${LAVASCOPE_CXX_STD:-$std}"

sources=("$root"/torch/csrc/*.cpp)
flags=(-O2 -fPIC -std="$std" -fvisibility=hidden -w "${abiflags[@]}" "${cudadefs[@]}")
for i in "${incs[@]}"; do
	# /usr/include is already a system folder; naming it again breaks #include_next.
	[[ "$i" == /usr/include ]] || flags+=(-isystem "$i")
done
libs=(-L"$libdir" -Wl,-rpath,"$libdir" "${cudalibs[@]}" -ltorch -ltorch_cpu -lc10)

libid="$(stat -L -c '%n %s %Y' "$libdir/libtorch_cpu.so" "$verh")"
hash="$(
	{
		cat "${sources[@]}" "$root"/torch/csrc/*.h "${BASH_SOURCE[0]}" 2>/dev/null
		echo "$libid" "$("$cxx" --version | head -1)" "${flags[*]}" "${libs[*]}"
	} | sha256sum | cut -d' ' -f1
)"

echo "libtorch: $src"
echo "version:  ${version}${pyver:+ (torch $pyver)}"
echo "compiler: $("$cxx" --version | head -1), -std=$std"
if [[ $cuda == 1 ]]; then echo "device:   $cudanote"; else echo "device:   CPU only"; fi

if [[ "${FORCE:-0}" != 1 && -f "$out" && -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
	echo "shim:     $out (up to date)"
	exit 0
fi

mkdir -p "$build"
tmp="$out.tmp.$$"
objdir="$(mktemp -d "$build/shim-obj.XXXXXX")"
trap 'rm -rf "$tmp" "$objdir"' EXIT
start=$SECONDS
# One compiler per source file, as many at once as there are cores: each
# spends most of its time in libtorch's headers.
jobs="$(nproc 2>/dev/null || echo 2)"
# The first build is minutes of silence otherwise (66 s on a 2-core Xeon at
# load 1-2, 219 s at load 11): say what runs, how long it takes, and each
# file as it is done.
echo "building: $out"
echo "          compiling ${#sources[@]} C++ files against libtorch's headers, $jobs at a time:"
echo "          about a minute with 2 idle cores, up to four on a busy machine; only once, until"
echo "          the sources or the libtorch change"
done_count=0
pids=()
names=()
objs=()
failed=()
wait_first() {
	local status=ok
	wait "${pids[0]}" || {
		failed+=("${names[0]}")
		status=failed
	}
	done_count=$((done_count + 1))
	echo "          [$done_count/${#sources[@]}] ${names[0]} $status ($((SECONDS - start)) s)"
	pids=("${pids[@]:1}")
	names=("${names[@]:1}")
}
# Three files hold optional code, compiled with defines and, should that
# fail, without them (their ops then say the feature is off), so a libtorch
# whose API differs costs the feature, not the shim: graphs.cpp the CUDA
# graphs (LAVASCOPE_GRAPHS; tried with a CUDA libtorch >= 2 and its CUDA
# headers), profile.cpp libtorch's profiler (LAVASCOPE_PROFILER; always
# tried), dist.cpp c10d's Gloo (LAVASCOPE_GLOO; always tried, needs the gloo
# headers: libgloo-dev on Debian) and NCCL (LAVASCOPE_NCCL; tried with a CUDA
# libtorch and its CUDA headers).
graphs=0
if [[ ${#cudadefs[@]} -gt 0 && "${version%%.*}" =~ ^[0-9]+$ && "${version%%.*}" -ge 2 ]]; then graphs=1; fi
optional_define() { # optional_define FILE: the define FILE is tried with, if any
	case "$1" in
	graphs.cpp) [[ $graphs == 1 ]] && echo -DLAVASCOPE_GRAPHS ;;
	profile.cpp) echo -DLAVASCOPE_PROFILER ;;
	dist.cpp)
		echo -DLAVASCOPE_GLOO -DUSE_C10D_GLOO
		[[ ${#cudadefs[@]} -gt 0 ]] && echo -DLAVASCOPE_NCCL -DUSE_C10D_NCCL
		;;
	esac
	return 0
}
for f in "${sources[@]}"; do
	o="$objdir/$(basename "${f%.cpp}").o"
	objs+=("$o")
	extra=($(optional_define "$(basename "$f")"))
	"$cxx" "${flags[@]}" "${extra[@]}" -c "$f" -o "$o" &
	pids+=($!)
	names+=("$(basename "$f")")
	((${#pids[@]} < jobs)) || wait_first
done
while ((${#pids[@]} > 0)); do wait_first; done
kept=()
without=() # the optional files built without their define
for n in "${failed[@]}"; do
	def="$(optional_define "$n")"
	if [[ -z "$def" ]]; then
		kept+=("$n")
		continue
	fi
	echo "build-torch: $n did not compile with $def (compiler output above); building it without" >&2
	"$cxx" "${flags[@]}" -c "$root/torch/csrc/$n" -o "$objdir/${n%.cpp}.o" || die "compiling $n without $def failed"
	without+=("$n")
done
failed=("${kept[@]}")
((${#failed[@]} == 0)) || die "compiling ${failed[*]} against $src failed (compiler output above)"
echo "          linking ($((SECONDS - start)) s)"
if ! "$cxx" -shared "${flags[@]}" -o "$tmp" "${objs[@]}" "${libs[@]}"; then
	die "linking the shim against $src failed (linker output above)"
fi
mv -f "$tmp" "$out"
echo "$hash" >"$stamp"
if [[ $cuda == 1 ]]; then
	if [[ $graphs == 1 && " ${without[*]} " != *" graphs.cpp "* ]]; then
		echo "graphs:   CUDA graphs on"
	else
		echo "graphs:   CUDA graphs off (need libtorch >= 2 with the CUDA headers)"
	fi
fi
if [[ " ${without[*]} " == *" profile.cpp "* ]]; then echo "profiler: off (its headers did not compile)"; fi
if [[ " ${without[*]} " == *" dist.cpp "* ]]; then
	echo "distributed: off (the c10d or gloo headers did not compile; on Debian: apt-get install libgloo-dev)"
elif [[ ${#cudadefs[@]} -gt 0 ]]; then
	echo "distributed: gloo, nccl"
else
	echo "distributed: gloo"
fi
echo "shim:     $out (built in $((SECONDS - start)) s)"
