#!/usr/bin/env bash
# Build a candle 0.11 `cuda`-feature binary on a machine WITHOUT a GPU, driver or CUDA
# toolkit, using only PyPI wheels (CUDA 13.0.2) + crates.io. Output runs on an H100 with
# driver >= 580 (CUDA 13.0). See "CUDA" in the README; checked on an H100 by bench/gpu-check.sh.
#
# usage: build-cuda.sh [APP_DIR] [TARGET_DIR]
#   APP_DIR     cargo project to build (default: the current directory)
#   TARGET_DIR  cargo target dir (default: APP_DIR/target-cuda)
# env overrides: VENV (default ~/.cache/areo-cuda/venv), CUDA_LINK_ROOT (default ~/.cache/areo-cuda/root),
#                CUDA_COMPUTE_CAP (default 90), CARGO_FEATURES (default "cuda"),
#                CARGO_BIN (binary name), DIST (default APP_DIR/dist-cuda), SHIP_CURAND=1 (also put an
#                xz'd libcurand.so.10 into DIST, for GPU hosts whose torch venv lacks nvidia-curand)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
APP="$(cd "${1:-.}" && pwd)"
TGT="${2:-$APP/target-cuda}"
VENV="${VENV:-$HOME/.cache/areo-cuda/venv}"
CUDA_VER=13.0.2          # cuda-toolkit meta-package: nvcc 13.0.88, cudart 13.0.96, cublas 13.1.0.3, curand 10.4.0.35, nvrtc 13.0.88
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"   # H100 = sm_90 (cudaforge turns 90 into sm_90a/compute_90a)

# 1. CUDA 13.0 toolkit pieces from PyPI into a private venv (~1.2 GB installed, ~0.68 GB download; cublas alone 423 MB)
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
PYSP="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
CU="$PYSP/nvidia/cu13"
if [ ! -x "$CU/bin/nvcc" ] || [ ! -e "$CU/lib/libcurand.so.10" ]; then
  "$VENV/bin/pip" install -q "cuda-toolkit[nvcc,crt,nvvm,cudart,cublas,curand,nvrtc,cccl]==$CUDA_VER"
fi
"$CU/bin/nvcc" --version | grep -q "release 13.0" || { echo "nvcc is not 13.0" >&2; exit 1; }

# 2. a CUDA_ROOT-like link folder: unversioned .so names for the linker + a stub libcuda.so
ROOT="${CUDA_LINK_ROOT:-$HOME/.cache/areo-cuda/root}"
mkdir -p "$ROOT/lib"
for l in cublas.so.13 cublasLt.so.13 curand.so.10 nvrtc.so.13 cudart.so.13; do
  ln -sfn "$CU/lib/lib$l" "$ROOT/lib/lib${l%%.so*}.so"
done
# libcuda.so comes with the NVIDIA *driver*, not with any wheel. Generate a link-time stub
# (soname libcuda.so.1) exporting every cu* symbol cudarc's driver bindings may reference.
# It is only used by the linker; at run time the real driver's libcuda.so.1 is loaded.
if [ ! -e "$ROOT/lib/libcuda.so" ]; then
  (cd "$APP" && cargo fetch -q)
  CUDARC_VER="$(awk '/^name = "cudarc"$/ {getline; gsub(/version = |"/, ""); print; exit}' "$APP/Cargo.lock")"
  CUDARC_SRC="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$CUDARC_VER" | head -1)"
  echo "libcuda stub from cudarc $CUDARC_VER driver bindings: $CUDARC_SRC"
  grep -ohE "pub unsafe fn cu[A-Za-z0-9_]+\(" "$CUDARC_SRC/src/driver/sys/mod.rs" \
    | sed 's/pub unsafe fn //; s/(//' | sort -u \
    | awk '{print "int " $1 "(void) { return 999; /* CUDA_ERROR_UNKNOWN: stub */ }"}' > "$ROOT/libcuda_stub.c"
  cc -shared -fPIC -O0 -Wl,-soname,libcuda.so.1 -o "$ROOT/lib/libcuda.so" "$ROOT/libcuda_stub.c"
fi

# 3. environment read by the build scripts
export PATH="$CU/bin:$PATH"   # cudarc build.rs runs plain `nvcc --version` -> cuda-13000 cfg
export NVCC="$CU/bin/nvcc"    # cudaforge (candle-kernels build.rs) nvcc lookup
export CUDA_ROOT="$ROOT"      # cudarc build.rs: rustc-link-search=$CUDA_ROOT/lib
unset CUDA_HOME CUDA_PATH CUDA_TOOLKIT_ROOT_DIR || true   # cudarc uses ALL of these if set
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-$(nproc)}"  # parallel nvcc jobs in candle-kernels' build.rs (default was 1 here)

# 4. build (nvcc compiles 11 PTX files + the static libmoe.a (SASS sm_90a); clean build 5-7.5 min on 2 cores)
cd "$APP"
cargo build --release --features "${CARGO_FEATURES:-cuda}" --target-dir "$TGT"
BIN_NAME="${CARGO_BIN:-$(sed -n 's/^name *= *"\(.*\)"/\1/p' Cargo.toml | head -1)}"
BIN="$TGT/release/$BIN_NAME"
DIST="${DIST:-$APP/dist-cuda}"
mkdir -p "$DIST"
strip -o "$DIST/$BIN_NAME" "$BIN"
xz -9 -T0 -f -k "$DIST/$BIN_NAME"          # 44 MB -> ~5 MB (PTX text + SASS compress well)
cp "$HERE/run-on-gpu.sh" "$DIST/"
if [ "${SHIP_CURAND:-0}" = 1 ] && [ ! -e "$DIST/libcurand.so.10.xz" ]; then
  xz -9 -T0 -c "$CU/lib/libcurand.so.10" > "$DIST/libcurand.so.10.xz"   # 132 MB -> 41 MB
fi
ls -l "$BIN" "$DIST"
readelf -d "$BIN" | grep -E "NEEDED|RUNPATH|RPATH" || true
