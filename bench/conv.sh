#!/usr/bin/env bash
# Per-layer table for bench/unet.sh: every distinct convolution of a U-Net configuration at
# batch 4, forward and backward, in areo's kernels, candle's built-in ops and PyTorch, same
# threads. PyTorch is installed into target/bench-venv on first use.
# usage: bench/conv.sh [CONFIG] [THREADS]     (default models/unet-resnet18.toml, nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${1:-models/unet-resnet18.toml}"
THREADS="${2:-$(nproc)}"
source bench/torch-venv.sh
RAYON_NUM_THREADS="$THREADS" target/release/areo bench conv --config "$CONFIG" --json \
  | "$VENV/bin/python" bench/conv_torch.py --threads "$THREADS"
