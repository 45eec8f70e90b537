#!/usr/bin/env bash
# Annotation conversions checked against an independent converter: the real fixtures in
# ../shared/fixtures/annotations and generated tricky cases (border, zero-size, outside, thin,
# sub-pixel, multi-part, non-ASCII, empty, a hostile image name) go through
# `areo labels convert` and through globox to YOLO, PASCAL VOC and COCO; bench/annotations.py
# reads every output back with its own small parser, prints each disagreement with who is
# right by the format's documentation, and scores the COCO files against themselves with
# pycocotools. Exits non-zero when areo is wrong anywhere.
#
#   bench/annotations.sh               # AREO_BIN=path skips the release build
set -euo pipefail
cd "$(dirname "$0")/.."
fixtures=${AREO_FIXTURES:-../shared/fixtures/annotations}
[ -d "$fixtures" ] || { echo "no $fixtures (set AREO_FIXTURES)" >&2; exit 2; }
VENV=target/annotations-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import globox, pycocotools' 2>/dev/null ||
    "$VENV/bin/pip" install -q globox==2.9.0 pycocotools numpy
if [ -z "${AREO_BIN:-}" ]; then
    cargo build --release -q
    AREO_BIN=$PWD/target/release/areo
fi
AREO_BIN=$AREO_BIN FIXTURES=$fixtures "$VENV/bin/python" bench/annotations.py
