# Sourced by the bench scripts that set areo beside PyTorch: VENV, with torch installed into
# target/bench-venv on first use, and a release build of areo.
VENV=target/bench-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import torch' 2>/dev/null || "$VENV/bin/pip" install -q torch
cargo build --release -q
