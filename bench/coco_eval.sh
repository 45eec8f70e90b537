#!/usr/bin/env bash
# `areo eval --detections` against pycocotools on generated truth and results with crowds,
# duplicates, every area range, tied scores and over 100 detections an image
# (bench/coco_eval.py); fails when a summary number or a class's AP differs by over 1e-4.
#
#   bench/coco_eval.sh               # AREO_BIN=path skips the release build
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/annotations-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import pycocotools' 2>/dev/null || "$VENV/bin/pip" install -q pycocotools numpy
if [ -z "${AREO_BIN:-}" ]; then
    cargo build --release -q
    AREO_BIN=$PWD/target/release/areo
fi
AREO_BIN=$AREO_BIN "$VENV/bin/python" bench/coco_eval.py
