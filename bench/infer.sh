#!/usr/bin/env bash
# Tiled inference over a generated SIDE x SIDE px scene with a small trained U-Net (the demo's
# unet-tiny, one epoch): seconds, pixels per second and the daemon's peak memory (VmHWM),
# which streaming keeps to a few chips' height of rows whatever the scene's height.
#
#   bench/infer.sh [SIDE]       # default 4000
#
# Needs python3; installs numpy into target/bench-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
side=${1:-4000}
cargo build --release --quiet
areo="$PWD/target/release/areo"
venv=target/bench-venv
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet pillow numpy; }
work=$(mktemp -d)
trap '"$areo" --workspace "$work/ws" stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
sed -e 's/^epochs = .*/epochs = 1/' -e 's/^name = .*/name = "bench-tiny"/' models/unet-tiny.toml > "$work/tiny.toml"
"$areo" --workspace "$work/ws" --json demo --headless --config "$work/tiny.toml" >/dev/null 2>&1
"$venv/bin/python" bench/make_scene.py "$side" "$work/scene.png"
# A fresh daemon, so its peak is this inference's.
"$areo" --workspace "$work/ws" stop >/dev/null
start=$(date +%s.%N)
"$areo" --workspace "$work/ws" infer --run demo-bench-tiny --image "$work/scene.png" --out "$work/pred" >/dev/null 2>&1
seconds=$(echo "$(date +%s.%N) - $start" | bc -l)
pid=$("$areo" --workspace "$work/ws" --json status | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
peak_kb=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
printf 'scene %d x %d px: %.1f s, %.0f px/s, daemon peak RSS %.0f MB\n' "$side" "$side" "$seconds" \
  "$(echo "$side * $side / $seconds" | bc -l)" "$(echo "$peak_kb / 1024" | bc -l)"
printf '(held whole, the scene alone as f32 samples would be %.0f MB)\n' "$(echo "$side * $side * 4 / 1048576" | bc -l)"
