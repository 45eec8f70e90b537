#!/usr/bin/env bash
# The device check for a GPU machine (CUDA 13 driver, PyTorch in python3, no Rust, no
# internet), run from the repository root with dist-cuda/ beside it (bench/build-cuda.sh
# makes it here; the `device` tool's `carry` takes it there):
#   1. CUDA and CPU give the same classes for the same unet-resnet18 weights on real chips;
#   2. a short CUDA training run (unet-resnet18 on the crater sample) lowers the loss and
#      records the GPU memory per epoch (what `areo runs show` and the runs view show), and
#      its CUDA and CPU predictions of the whole sample agree;
#   3. speed beside PyTorch on the same GPU: inference per image at batch 1/16/64, a training
#      step at batch 16, peak GPU memory.
# usage: bench/gpu-check.sh [OUT_DIR]      (OUT_DIR defaults to $OUT or /tmp/gpu-check)
set -uo pipefail
OUT_DIR="${1:-${OUT:-/tmp/gpu-check}}"
mkdir -p "$OUT_DIR"
exec > >(tee "$OUT_DIR/gpu-check.log") 2>&1
AREO=(bash dist-cuda/run-on-gpu.sh dist-cuda/areo)
PY="${TORCH_PYTHON:-$( [ -x /opt/torch/.venv/bin/python ] && echo /opt/torch/.venv/bin/python || echo python3)}"
WORK="$(mktemp -d)"
export AREO_HOME="$WORK/ws"
step() { echo; echo "== $* ($(date +%T))"; }

step "GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'

step "1. CUDA vs CPU, unet-resnet18, same weights, real 256 px chips"
timeout 300 "${AREO[@]}" bench unet --config models/unet-resnet18.toml --device cuda \
  --infer-batches 1 --train-batch 0 --repeats 1 --agree-with cpu

step "2. training unet-resnet18 on CUDA (crater sample, 128 px chips, x >= 384 held out)"
sed -e 's/^tile = 256/tile = 128/' -e 's/^epochs = 20/epochs = 8/' -e 's/^freeze_epochs = 1/freeze_epochs = 0/' \
  -e 's/^name = "unet-resnet18"/name = "gpu-check-r18"/' models/unet-resnet18.toml > "$WORK/r18.toml"
"${AREO[@]}" tile data/craters/nanedi-512x320.png --size 128 --stride 32 \
  --labels data/craters/nanedi-512x320.csv --from craters --out "$WORK/tiles" | tail -1
"${AREO[@]}" dataset create craters --tiles "$WORK/tiles" --validation-box 384,0,128,320
START=$(date +%s)
timeout 420 "${AREO[@]}" --json train --config "$WORK/r18.toml" --dataset craters --device cuda --name r18 > "$WORK/train.json"
echo "train exit $? in $(( $(date +%s) - START )) s: $(cat "$WORK/train.json")"
"${AREO[@]}" runs show r18
"$PY" - "$AREO_HOME/runs/r18/metrics.jsonl" <<'PYEOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
first, last = lines[0]["train_loss"], lines[-1]["train_loss"]
print(f"CUDA training loss {first:.4f} -> {last:.4f}: {'LOWERED' if last < first else 'NOT LOWERED'}")
memory = [l.get("gpu_memory") for l in lines]
ok = all(m and 0 < m["used"] <= m["total"] for m in memory)
print("GPU memory per epoch (device-wide, busiest step, GiB):",
      " ".join(f"{m['used'] / 2**30:.2f}" if m else "-" for m in memory),
      "RECORDED" if ok else "MISSING")
PYEOF
for device in cuda cpu; do
  timeout 300 "${AREO[@]}" infer --run r18 --image data/craters/nanedi-512x320.png --device $device \
    --out "$WORK/pred-$device" | tail -1
done
echo "agreement of the trained model's CUDA and CPU masks (accuracy of one against the other):"
"${AREO[@]}" eval --truth "$WORK/pred-cpu/mask.png" --predicted "$WORK/pred-cuda/mask.png" | head -1

step "3. speed, unet-resnet18 at 256 px, fp32 (areo, then PyTorch strict fp32, then PyTorch with TF32)"
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$WORK/memory.txt" &
SAMPLER=$!
BASE=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
timeout 300 "${AREO[@]}" bench unet --config models/unet-resnet18.toml --device cuda \
  --infer-batches 1,16,64 --train-batch 16 --repeats 5 | tee "$WORK/areo.txt"
kill $SAMPLER
echo "areo peak GPU memory: $(( $(sort -n "$WORK/memory.txt" | tail -1) - BASE )) MiB above idle (nvidia-smi, whole process)"
timeout 300 "$PY" bench/unet_torch.py models/unet-resnet18.toml --device cuda \
  --infer-batches 1,16,64 --train-batch 16 --repeats 5 | tee "$WORK/torch.txt"
timeout 200 "$PY" bench/unet_torch.py models/unet-resnet18.toml --device cuda --tf32 \
  --infer-batches 1,16,64 --train-batch 16 --repeats 5 | sed 's/torch=/torch_tf32=/' | tee "$WORK/torch-tf32.txt"
echo
echo "== side by side (seconds per image for infer, per step for train)"
join <(grep -v '^#' "$WORK/areo.txt" | sed 's/ areo=/ /' | sort) <(grep -v '^#' "$WORK/torch.txt" | sed 's/ torch=/ /' | sort) \
  | awk '{printf "%s areo=%s torch=%s ratio=%.2f\n", $1, $2, $3, $2/$3}'
"${AREO[@]}" stop >/dev/null 2>&1 || true
cp "$WORK"/*.txt "$WORK"/*.json "$OUT_DIR"/ 2>/dev/null || true
