#!/usr/bin/env bash
# areo's SSD detector against the same network in PyTorch on this machine's CPU, same thread count:
# one line per figure, `<figure> areo=<seconds> torch=<seconds> ratio=<areo/torch>`, for
# inference per image at batch 1 and 4 and a training step at batch 4 (the configuration's tile), and
# on the CPU the step's forward, backward and optimiser phases.
# PyTorch is installed into target/bench-venv on first use.
# usage: bench/ssd.sh [CONFIG] [THREADS]     (default models/ssd-craters.toml, nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${1:-models/ssd-craters.toml}"
THREADS="${2:-$(nproc)}"
source bench/torch-venv.sh
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "# $CONFIG, $THREADS thread(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >&2
RAYON_NUM_THREADS="$THREADS" target/release/areo bench model --config "$CONFIG" \
  --infer-batches 1,4 --train-batch 4 --repeats 5 > "$WORK/areo.txt"
"$VENV/bin/python" bench/ssd_torch.py "$CONFIG" --threads "$THREADS" \
  --infer-batches 1,4 --train-batch 4 --repeats 5 > "$WORK/torch.txt"
join <(grep -v '^#' "$WORK/areo.txt" | sed 's/ areo=/ /' | sort) \
     <(grep -v '^#' "$WORK/torch.txt" | sed 's/ torch=/ /' | sort) \
  | awk '{printf "%s areo=%s torch=%s ratio=%.2f\n", $1, $2, $3, $2/$3}'
