#!/usr/bin/env bash
# Rebuilds the embedded demo model in demo/model/ (`make demo-model`).
#
# `lavascope train` learns a BPE vocabulary from the synthetic corpus and
# trains a tiny CLIP from scratch (width 64, 2 layers a side, 224-pixel images
# in 32-pixel patches: a 7×7 grid as in ViT-B/32) on the train split of the
# demo's synthetic pairs (--data demo) with tree input, keeping the checkpoint
# of the best evaluation on the val split. The checkpoint's trainer_state.json
# records the command. About 5–10 minutes on two CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."

make --no-print-directory torch build
bin=build/lavascope
run=$(mktemp -d)
trap 'rm -rf "$run"' EXIT

"$bin" train --data demo --init tiny --learn-vocab 500 --input tree --style paper \
	--batch-pairs 8 --steps 3000 --lr 1e-3 --warmup 200 --weight-decay 0.1 --clip-grad 1 \
	--eval-every 250 --seed 1 --device cpu --out "$run/run"

rm -rf demo/model.new
mkdir demo/model.new
for f in config.json model.safetensors vocab.json merges.txt preprocessor_config.json trainer_state.json; do
	cp "$run/run/best/$f" demo/model.new/
done
rm -rf demo/model
mv demo/model.new demo/model

# The binary embeds the model: rebuild it, then print the demo's Table 1 rows.
make --no-print-directory build
for input in text tree; do
	"$bin" eval --checkpoint demo --data demo --input "$input" --device cpu
done
