#!/usr/bin/env bash
# Records the media the README and docs/ show, from the real binary on the
# embedded demo (checkpoint demo, data demo, test split):
#
#   docs/walkthrough.cast          asciinema v2 cast, 100x30, half-block images, keys shown
#   docs/screenshots/list.png      the pair list
#   docs/screenshots/pair.png      a pair view, half-blocks with 24-bit colour
#   docs/screenshots/pair-sixel.png the same pair in sixel (xterm as a VT340)
#   docs/screenshots/summary.png   the split summary
#   docs/screenshots/help.png      the help screen
#
# Usage: scripts/record-demo.sh [cast|screenshots|all]   (default all)
#
# Needs (Debian package names): asciinema, tmux (drives the recording),
# xterm, xvfb, xdotool (types into xterm), x11-utils, imagemagick (import,
# convert), fonts-dejavu-core; and the libtorch shim (make torch). The binary is built
# here unless LAVASCOPE_BIN names one; LAVASCOPE_TORCH_LIB defaults to
# build/liblavascope_torch.so. The config and cache are empty temporary
# folders, so a user's config.yaml does not change what gets recorded; the
# device is whatever auto finds (the committed media were made on CPU).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-all}
case $what in
cast | screenshots | all) ;;
*)
	echo "usage: $0 [cast|screenshots|all]" >&2
	exit 2
	;;
esac

missing=()
need() { command -v "$1" >/dev/null || missing+=("$2"); }
need tmux tmux
if [ "$what" != screenshots ]; then
	need asciinema asciinema
fi
if [ "$what" != cast ]; then
	need xterm xterm
	need Xvfb xvfb
	need xdotool xdotool
	need xwininfo x11-utils
	need import imagemagick
	need fc-list fontconfig
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "record-demo: missing commands; install them with:" >&2
	echo "  sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
if [ "$what" != cast ] && [ -z "$(fc-list 'DejaVu Sans Mono')" ]; then
	echo "record-demo: the DejaVu Sans Mono font is missing: sudo apt-get install -y fonts-dejavu-core" >&2
	exit 1
fi

export LAVASCOPE_TORCH_LIB=${LAVASCOPE_TORCH_LIB:-$root/build/liblavascope_torch.so}
if [ ! -f "$LAVASCOPE_TORCH_LIB" ]; then
	echo "record-demo: no libtorch shim at $LAVASCOPE_TORCH_LIB: run make torch" >&2
	exit 1
fi
bin=${LAVASCOPE_BIN:-}
# Other LAVASCOPE_* settings (device, colormap, ...) would change the media.
while IFS='=' read -r name _; do
	[ "$name" = LAVASCOPE_TORCH_LIB ] || unset "$name"
done < <(env | grep '^LAVASCOPE_' || true)

work=$(mktemp -d)
sock=lavascope-rec-$$
xvfb_pid=
cleanup() {
	tmux -L "$sock" kill-server 2>/dev/null || true
	[ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
export XDG_CONFIG_HOME=$work/config XDG_CACHE_HOME=$work/cache XDG_DATA_HOME=$work/data

if [ -z "$bin" ]; then
	bin=$work/lavascope
	(cd "$root" && CGO_ENABLED=0 go build -o "$bin" ./cmd/lavascope)
fi
# The explorer runs in the temporary folder: nothing it writes lands in the
# repository.
cd "$work"

# --- the asciinema cast ------------------------------------------------------

# wait_for REGEXP [SECONDS]: until the tmux pane shows REGEXP (grep -E).
# Here and below grep reads all of its input (>/dev/null rather than -q): with
# pipefail, a writer killed by SIGPIPE when grep -q stops early fails the test.
wait_for() {
	local deadline=$((SECONDS + ${2:-60}))
	until tmux -L "$sock" capture-pane -p -t rec | grep -E -- "$1" >/dev/null; do
		if [ $SECONDS -ge $deadline ]; then
			echo "record-demo: the screen never showed \"$1\"; it shows:" >&2
			tmux -L "$sock" capture-pane -p -t rec >&2
			exit 1
		fi
		sleep 0.1
	done
}

# key KEY REGEXP PAUSE: press KEY, wait until REGEXP is on screen, then
# leave the viewer PAUSE seconds to read it.
key() {
	tmux -L "$sock" send-keys -t rec "$1"
	wait_for "$2"
	sleep "$3"
}

record_cast() {
	local cast=$work/walkthrough.cast
	printf 'set -g status off\n' >"$work/tmux.conf"
	# The recording runs outside tmux's view of the terminal (TMUX unset,
	# TERM=xterm-256color, COLORTERM=truecolor): the cast keeps what the
	# explorer writes, 24-bit colours included, as a truecolor xterm gets it.
	# 100x30 so that it plays in a browser column or a laptop terminal;
	# --show-keys puts each key in the hint bar, since a cast shows no
	# keyboard.
	tmux -L "$sock" -f "$work/tmux.conf" new-session -d -x 100 -y 30 -s rec \
		"env -u TMUX -u TMUX_PANE TERM=xterm-256color COLORTERM=truecolor \
		asciinema rec --quiet --overwrite --idle-time-limit 5 \
		--title 'lavascope: the explorer on the embedded demo' \
		-c '$bin explore --graphics blocks --show-keys' $cast; echo \$? >$work/rec.rc; sleep 60"
	local size
	size=$(tmux -L "$sock" display -p -t rec '#{pane_width}x#{pane_height}')
	[ "$size" = 100x30 ] || {
		echo "record-demo: pane is $size, not 100x30" >&2
		exit 1
	}

	wait_for "all [0-9]+ explained" 120
	sleep 2
	for k in j j j j k k k k; do
		tmux -L "$sock" send-keys -t rec "$k"
		sleep 0.35
	done
	sleep 1
	key f "with a failure +failures only" 2.5
	# The first two failures, whichever pairs the demo model fails.
	key Enter " · 1/[0-9]+" 4
	key w "tokens, #position" 3
	key w "constituents · w" 2
	key n " · 2/[0-9]+" 3
	key m "· rollout ·" 2.5
	key m "· attention ·" 1
	key m "· gradattn ·" 1
	key m "· chefer ·" 2
	key l "start layer all" 3
	key t "target twin" 3
	key o "boxes off" 2
	key o "boxes on" 1.5
	key e "exported [0-9]+ files" 3
	key a "FAMILY" 5
	key Escape " · 2/[0-9]+" 1.5
	key Escape "enter open" 1.5
	key f "[0-9]+ pairs" 1.5
	# A short fine-tune: 40 steps, then the pairs whose readings flipped.
	key T "fine-tune ·" 2
	for k in BSpace BSpace BSpace 4 0; do
		tmux -L "$sock" send-keys -t rec "$k"
		sleep 0.25
	done
	key Enter "[0-9]+/40" 1
	wait_for "readings? flipped \\(" 300
	sleep 4
	key Escape "enter open" 2
	key x "flipped" 3
	key Enter " · 1/[0-9]+" 3
	key B "before .* after" 5
	key Escape "picks image" 1.5
	key '?' "lavascope keys" 4
	key Escape "esc back" 1.5
	key Escape "enter open" 2
	tmux -L "$sock" send-keys -t rec q
	local deadline=$((SECONDS + 20))
	until [ -s "$work/rec.rc" ]; do
		if [ $SECONDS -ge $deadline ]; then
			echo "record-demo: the explorer did not quit" >&2
			exit 1
		fi
		sleep 0.1
	done
	[ "$(cat "$work/rec.rc")" = 0 ] || {
		echo "record-demo: asciinema rec exited $(cat "$work/rec.rc")" >&2
		exit 1
	}
	# The pane must be left as the explorer found it: nothing on the screen.
	if tmux -L "$sock" capture-pane -p -t rec | grep '[^[:space:]]' >/dev/null; then
		echo "record-demo: the terminal was left with text on it:" >&2
		tmux -L "$sock" capture-pane -p -t rec >&2
		exit 1
	fi
	tmux -L "$sock" kill-session -t rec

	head -n 1 "$cast" | grep -F '"version": 2, "width": 100, "height": 30' >/dev/null || {
		echo "record-demo: unexpected cast header: $(head -n 1 "$cast")" >&2
		exit 1
	}
	# Leaving: the alternate screen is left and the cursor shown again.
	tail -n 5 "$cast" | grep -F '\u001b[?1049l' >/dev/null || {
		echo "record-demo: the cast does not end by leaving the alternate screen" >&2
		exit 1
	}
	tail -n 5 "$cast" | grep -F '\u001b[?25h' >/dev/null || {
		echo "record-demo: the cast does not end by showing the cursor" >&2
		exit 1
	}
	local bytes
	bytes=$(wc -c <"$cast")
	[ "$bytes" -lt 2000000 ] || {
		echo "record-demo: the cast is $bytes bytes; keep it under 2 MB" >&2
		exit 1
	}
	cp "$cast" "$root/docs/walkthrough.cast"
	echo "docs/walkthrough.cast: $bytes bytes, $(($(wc -l <"$cast") - 1)) events"
}

# --- the screenshots ---------------------------------------------------------

# hash: a digest of the xterm window's pixels.
hash() { import -window "$wid" -depth 8 rgb:- 2>/dev/null | md5sum | cut -d' ' -f1; }

# settle [BEFORE]: until the window differs from the digest BEFORE (when
# given) and has not changed for 1.2 s: the spinner in the status bar
# animates while anything runs in the background, so a still window is a
# finished one.
settle() {
	local before=${1:-} prev cur same=0 deadline=$((SECONDS + 120))
	prev=$(hash)
	while [ $same -lt 4 ] || [ "$prev" = "$before" ]; do
		if [ $SECONDS -ge $deadline ]; then
			echo "record-demo: the xterm window never settled" >&2
			exit 1
		fi
		sleep 0.3
		cur=$(hash)
		if [ "$cur" = "$prev" ]; then same=$((same + 1)); else same=0; fi
		prev=$cur
	done
}

# press KEY: type KEY into the xterm and wait for the new screen.
press() {
	local before
	before=$(hash)
	xdotool key --clearmodifiers "$1"
	settle "$before"
}

# shot NAME: save the xterm window as docs/screenshots/NAME.png.
shot() {
	local out=$root/docs/screenshots/$1.png
	import -window "$wid" -depth 8 "$work/$1.png"
	convert "$work/$1.png" -strip -define png:compression-level=9 "$out"
	echo "docs/screenshots/$1.png: $(identify -format '%wx%h' "$out"), $(wc -c <"$out") bytes"
}

# xterm_start ARGS...: start the explorer with ARGS in a 160x48 xterm that
# answers as a VT340 (sixel, 1024 colour registers) and find its window.
xterm_start() {
	# xterm drops COLORTERM from the environment it passes on, so env sets it
	# inside.
	xterm -ti vt340 -xrm 'XTerm*numColorRegisters: 1024' \
		-fa 'DejaVu Sans Mono' -fs 9 -geometry 160x48+0+0 -tn xterm-256color \
		-bg black -fg '#d0d0d0' -title lavascope \
		-e env COLORTERM=truecolor "$bin" "$@" &
	xterm_pid=$!
	wid=
	local deadline=$((SECONDS + 20))
	until wid=$(xdotool search --pid "$xterm_pid" 2>/dev/null | head -n 1) && [ -n "$wid" ]; do
		if [ $SECONDS -ge $deadline ]; then
			echo "record-demo: no xterm window appeared" >&2
			exit 1
		fi
		sleep 0.2
	done
	# Without a window manager keyboard focus follows the pointer, and xterm
	# ignores synthetic key events, so xdotool types at the pointer.
	local x y
	eval "$(xdotool getwindowgeometry --shell "$wid" | grep -E '^(WIDTH|HEIGHT)=')"
	x=$((WIDTH / 2)) y=$((HEIGHT / 2))
	xdotool mousemove "$x" "$y"
}

xterm_quit() {
	xdotool key q
	local deadline=$((SECONDS + 20))
	while kill -0 "$xterm_pid" 2>/dev/null; do
		if [ $SECONDS -ge $deadline ]; then
			echo "record-demo: the explorer did not quit" >&2
			exit 1
		fi
		sleep 0.1
	done
}

record_screenshots() {
	local d
	for d in $(seq 90 130); do
		[ -e "/tmp/.X11-unix/X$d" ] || [ -e "/tmp/.X$d-lock" ] || break
	done
	Xvfb ":$d" -screen 0 1600x1000x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
	xvfb_pid=$!
	export DISPLAY=:$d
	local deadline=$((SECONDS + 10))
	until xwininfo -root >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			echo "record-demo: Xvfb did not start: $(cat "$work/xvfb.log")" >&2
			exit 1
		fi
		sleep 0.2
	done
	mkdir -p "$root/docs/screenshots"

	xterm_start --graphics blocks
	settle
	shot list
	press f
	press Return
	shot pair
	press a
	shot summary
	press Escape
	press question
	shot help
	xterm_quit

	# auto: the explorer asks xterm (DA1 says sixel, TIOCGWINSZ the cell size).
	xterm_start --graphics auto
	settle
	press f
	press Return
	shot pair-sixel
	xterm_quit
}

case $what in
cast) record_cast ;;
screenshots) record_screenshots ;;
all)
	record_cast
	record_screenshots
	;;
esac
