#!/usr/bin/env bash
# PDS3 IMG decoding against known pixels: bench/pds3.py writes small products for every
# SAMPLE_TYPE and SAMPLE_BITS PDS3 defines for images (integers of either byte order, IEEE and
# VAX reals of 32 and 64 bits), line prefixes and suffixes, the three band orders,
# OFFSET/SCALING_FACTOR, each no-data form (constants, an ISIS bit pattern, a valid range) and
# attached and detached labels; reads them with areo, GDAL (Debian's gdal-bin) and pdr (PyPI),
# and prints each reader's agreement with the truth. Exits non-zero when areo is wrong.
#
#   bench/pds3.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v gdal_translate >/dev/null || {
    echo "installing GDAL (Debian's gdal-bin)" >&2
    apt-get install -y -q gdal-bin >/dev/null
}
VENV=target/pds-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import pdr, numpy' 2>/dev/null || "$VENV/bin/pip" install -q pdr==1.4.4 numpy
cargo build --release -q --example pds3_values
AREO_VALUES=$PWD/target/release/examples/pds3_values "$VENV/bin/python" bench/pds3.py
