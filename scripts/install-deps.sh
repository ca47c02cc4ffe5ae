#!/usr/bin/env bash
# Installs the Debian packages lavascope's build and tests need, when missing.
# As root it uses apt-get; otherwise sudo -n; otherwise it prints the exact
# command and fails, so that nothing is half-installed silently.
set -euo pipefail

pkgs=(
	g++               # compiles the libtorch shim
	libtorch-dev      # CPU libtorch 1.13 (skipped when $LIBTORCH or python3's torch is used)
	libgloo-dev       # c10d's Gloo headers: the shim's distributed ops (lavascope train --nproc-per-node)
	libopenblas0-pthread # without it libtorch falls back to reference BLAS: 40x slower matmuls
	imagemagick       # tests decode sixel output back into pixels
	tmux              # the end-to-end test drives the explorer in a real terminal
)

if [ -n "${LIBTORCH:-}" ]; then
	pkgs=("${pkgs[@]/libtorch-dev/}")
fi

missing=()
for p in "${pkgs[@]}"; do
	[ -z "$p" ] && continue
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
	sudo=(sudo -n)
else
	echo "lavascope needs these packages: ${missing[*]}" >&2
	echo "install them with:  sudo apt-get update && sudo ${cmd[*]}" >&2
	exit 1
fi
echo "installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" "${cmd[@]}" -qq
