#!/usr/bin/env bash
# areo reads torchvision's ResNet weights as PyTorch saves them (.pth, through candle's pickle
# reader) under torchvision's names: a randomly initialised torchvision resnet18 and resnet34
# (random batch-norm statistics too) are saved by PyTorch, loaded by areo as every family's
# backbone is (`--encoder-weights`), and their maps at strides 2 to 32 in evaluation mode are
# compared with PyTorch's: the largest difference relative to the map's largest value, which
# must be at most 1e-4 (the script fails otherwise).
# usage: bench/backbone.sh     (PyTorch and torchvision installed into target/bench-venv)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/torch-venv.sh
"$VENV/bin/python" -c 'import torchvision, safetensors' 2>/dev/null \
  || "$VENV/bin/pip" install -q torchvision safetensors
cargo build --release -q --example backbone_features
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
for depth in 18 34; do
  echo "# torchvision resnet$depth, random weights"
  "$VENV/bin/python" bench/backbone_torch.py save "$WORK" --depth "$depth"
  target/release/examples/backbone_features "$WORK/backbone.pth" "$WORK/input.safetensors" \
    "$WORK/areo.safetensors" "resnet$depth"
  "$VENV/bin/python" bench/backbone_torch.py compare "$WORK" "$WORK/areo.safetensors"
done
