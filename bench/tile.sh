#!/usr/bin/env bash
# Tiling a 20,000 x 20,000 px scene into 256 px PNG chips: areo (which decodes the PNG strip
# by strip) next to Python (Pillow decodes it whole, numpy slices, Pillow writes), on the
# same file and disk; then the same scene as a PDS3 IMG (areo reads line ranges, numpy
# memory-maps it). Prints seconds, chips per second and peak RSS of each.
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
printf '%-22s %8s %8s %10s %12s\n' "tool, source" chips seconds chips/s "peak RSS MB"
# $1: the row's name, then the command; sets chips, seconds and kb.
measure() {
  local name=$1 out=$work/out
  shift
  sync
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" "$out" >/dev/null 2>&1
  read -r seconds kb < "$work/time"
  chips=$(ls "$out" | grep -c '\.png$')
  rm -rf "$out"
  printf '%-22s %8d %8.2f %10.0f %12.1f\n' "$name" "$chips" "$seconds" "$(echo "$chips / $seconds" | bc -l)" "$(echo "$kb / 1024" | bc -l)"
}
for format in png IMG; do
  scene=$work/scene.$format
  "$py" bench/make_scene.py "$side" "$scene"
  echo "# ${side} x ${side} px, $(du -m "$scene" | cut -f1) MB $format; chips of ${size} px" >&2
  measure "areo, $format" "$areo" tile "$scene" --size "$size" --out
  areo_s=$seconds areo_kb=$kb
  measure "Pillow+numpy, $format" "$py" bench/tile_pillow.py "$scene" "$size"
  printf '  areo is %.1fx as fast, with %.1f%% of the memory\n' "$(echo "$seconds / $areo_s" | bc -l)" "$(echo "100 * $areo_kb / $kb" | bc -l)"
  rm -f "$scene"
done
