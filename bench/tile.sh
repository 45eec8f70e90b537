#!/usr/bin/env bash
# Tiling a 20,000 x 20,000 px scene into 256 px PNG chips: areo (which decodes the PNG strip
# by strip) next to Python (Pillow decodes it whole, numpy slices, Pillow writes), on the
# same file and disk. Prints seconds, chips per second and peak RSS of each.
#
#   bench/tile.sh [SIDE] [SIZE]       # defaults 20000 256
#
# Needs python3; installs Pillow and numpy into target/bench-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
side=${1:-20000}
size=${2:-256}
cargo build --release --quiet
areo="$PWD/target/release/areo"
venv=target/bench-venv
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet pillow numpy; }
py="$PWD/$venv/bin/python"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" bench/make_scene.py "$side" "$work/scene.png"
echo "scene: ${side} x ${side} px, $(du -m "$work/scene.png" | cut -f1) MB PNG; chips of ${size} px"

/usr/bin/time -f '%e %M' -o "$work/time" "$areo" tile "$work/scene.png" --size "$size" --out "$work/areo" >/dev/null 2>&1
read -r areo_s areo_kb < "$work/time"
areo_chips=$(ls "$work/areo" | grep -c '\.png$')
rm -rf "$work/areo"
sync
/usr/bin/time -f '%e %M' -o "$work/time" "$py" bench/tile_pillow.py "$work/scene.png" "$size" "$work/pillow" >/dev/null
read -r py_s py_kb < "$work/time"
py_chips=$(ls "$work/pillow" | grep -c '\.png$')

printf '%-15s %8s %8s %10s %12s\n' tool chips seconds chips/s "peak RSS MB"
printf '%-15s %8d %8.2f %10.0f %12.1f\n' areo "$areo_chips" "$areo_s" "$(echo "$areo_chips / $areo_s" | bc -l)" "$(echo "$areo_kb / 1024" | bc -l)"
printf '%-15s %8d %8.2f %10.0f %12.1f\n' "Pillow+numpy" "$py_chips" "$py_s" "$(echo "$py_chips / $py_s" | bc -l)" "$(echo "$py_kb / 1024" | bc -l)"
printf 'areo is %.1fx as fast, with %.1f%% of the memory\n' "$(echo "$py_s / $areo_s" | bc -l)" "$(echo "100 * $areo_kb / $py_kb" | bc -l)"
