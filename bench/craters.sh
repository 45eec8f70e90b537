#!/usr/bin/env bash
# Crater detection on the PyCDA HRSC tile (../shared/datasets/mars-craters-pycda, 1700 x 850
# px, 206 craters): train on the left of the tile, score craters with PyCDA's rule on the right
# third, which training never sees.
#
#   bench/craters.sh [CONFIG] [WORKSPACE]    # defaults models/unet-craters.toml, a temp folder
#   SEEDS="42 7 1 3" bench/craters.sh         # one run per seed, then their F1s and mean
#   bench/craters.sh models/ssd-craters.toml  # the SSD detector, scored by the same rule
#
# A segmentation's craters are the discs standing out in its crater probability map; a
# detector's are its boxes (centre, mean side as diameter) above a score threshold, picked as
# the one of 0.1, 0.2, ..., 0.9 with the best validation F1 (what a user may tune on).
#
# One run's F1 moves by up to +-0.1 with the seed (one crater is 0.02 of F1 on 48): compare
# configurations over several seeds.
#
# Areas (x, y, width, height in tile pixels), on the 64 px grid the chips start on: training
# x < 896 (143 craters); validation [896, 0, 224, 850] (15 craters: the run's per-epoch
# scores; inference takes the last epoch's weights); test [1120, 0, 580, 850] (48 craters).
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-models/unet-craters.toml}
data=${AREO_CRATERS:-../shared/datasets/mars-craters-pycda}
[ -f "$data/tile.png" ] || { echo "no $data/tile.png (set AREO_CRATERS)" >&2; exit 2; }
cargo build --release --quiet
areo="$PWD/target/release/areo"
ws=${2:-$(mktemp -d)}
mkdir -p "$ws"
export AREO_HOME="$ws"
# Craters painted at FILL x their diameter (the distance-transform split keeps touching ones
# apart); chips of the training tile + 32 px every 64 px.
fill=${FILL:-1.0}
tile=$(sed -n 's/^tile *= *//p' "$config")
trap '"$areo" stop >/dev/null 2>&1 || true' EXIT

"$areo" labels rasterize --from craters --size 1700x850 --circle-scale "$fill" \
    --out "$ws/truth" "$data/craters.csv" >/dev/null
"$areo" tile "$data/tile.png" --size $((tile + 32)) --stride 64 --labels "$data/craters.csv" \
    --from craters --circle-scale "$fill" --out "$ws/chips" >/dev/null
"$areo" dataset create craters --tiles "$ws/chips" --validation-box 896,0,224,850 \
    --test-box 1120,0,580,850 --replace >/dev/null
grep -q '^seed *=' "$config" || { echo "$config: no seed = line under [train]" >&2; exit 2; }
seeds=${SEEDS:-$(sed -n 's/^seed *= *//p' "$config")}
# Craters are the discs standing out in the crater probability map. The validation area first
# (what a user may tune on), the test area with mask components for comparison, then the
# test area as reported.
score() {
  "$areo" eval --truth "$ws/truth/craters.png" --predicted "$out/mask.png" \
      --classes 2 --craters "$data/craters.csv" --fill "$fill" "$@"
}
f1s=()
for seed in $seeds; do
  run=craters-$(date +%s)-seed$seed
  out="$ws/prediction-seed$seed"
  sed "s/^seed *=.*/seed = $seed/" "$config" > "$ws/$run.toml"
  start=$(date +%s)
  "$areo" train --config "$ws/$run.toml" --dataset craters --name "$run" \
      | grep --line-buffered "epoch"
  echo "seed $seed training: $(( $(date +%s) - start )) s"
  if grep -q '^kind *= *"ssd"' "$config"; then
    "$areo" infer --run "$run" --image "$data/tile.png" --out "$out" >/dev/null
    found() {
      "$areo" eval --truth "$data/craters.csv" --found "$out/craters.csv" "$@"
    }
    best=0.5 best_f1=-1
    for t in 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9; do
      f1=$(found --box 896,0,224,850 --threshold "$t" | sed -n 's/.*F1 \([0-9.]*\).*/\1/p')
      if awk "BEGIN { exit !($f1 > $best_f1) }"; then best=$t best_f1=$f1; fi
    done
    echo "seed $seed validation: best F1 $best_f1 at score threshold $best"
    found --box 1120,0,580,850 --threshold 0.5 | sed -n "s/^/seed $seed test at 0.5, /p"
    line=$(found --box 1120,0,580,850 --threshold "$best")
    echo "seed $seed $line"
    f1s+=("$(sed -n 's/.*F1 \([0-9.]*\).*/\1/p' <<<"$line")")
    continue
  fi
  "$areo" infer --run "$run" --image "$data/tile.png" --flips --probabilities \
      --out "$out" >/dev/null
  blobs=(--probabilities "$out/probability-1.png")
  score --box 896,0,224,850 "${blobs[@]}" | sed -n "\$s/^/seed $seed validation /p"
  score --box 1120,0,580,850 | sed -n "\$s/^/seed $seed test, /p"
  line=$(score --box 1120,0,580,850 "${blobs[@]}" --name "$run" --run "$run" | tail -n 1)
  echo "seed $seed $line"
  f1s+=("$(sed -n 's/.*F1 \([0-9.]*\).*/\1/p' <<<"$line")")
done
echo "test crater F1 over seeds ($seeds): ${f1s[*]}; mean $(printf '%s\n' "${f1s[@]}" \
    | awk '{ sum += $1 } END { printf "%.3f", sum / NR }')"
