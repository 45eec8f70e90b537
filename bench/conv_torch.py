"""Per-layer side of bench/conv.sh: reads `areo bench conv --json` on stdin, times the same
convolutions in PyTorch (forward; backward = input and weight gradients) with the same batch,
and prints one line per layer shape with both, in milliseconds per call.

usage: areo bench conv --json | python3 conv_torch.py [--threads N] [--repeats 5]
"""
import argparse
import json
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def median_ms(repeats, work):
    for _ in range(2):
        work()
    times = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    report = json.load(sys.stdin)
    batch = report["batch"]
    totals = {"areo": 0.0, "torch": 0.0, "candle": 0.0}
    print(f"# batch {batch}, ms per call; backward = input + weight gradient "
          f"(areo skips the stem's input gradient in training; here both are timed)")
    print(f"{'layer':34} {'n':>2} {'fwd areo':>9} {'torch':>7} {'candle':>7} "
          f"{'bwd areo':>9} {'torch':>7} {'candle':>7}")
    for layer in report["layers"]:
        cin, cout, k, s, side = map(int, re.match(
            r"conv_(\d+)_(\d+)_k(\d+)_s(\d+)_(\d+)px", layer["layer"]).groups())
        x = torch.randn(batch, cin, side, side, requires_grad=True)
        w = torch.randn(cout, cin, k, k, requires_grad=True)
        with torch.no_grad():
            fwd = median_ms(a.repeats, lambda: F.conv2d(x, w, stride=s, padding=k // 2))
        grad = torch.randn_like(F.conv2d(x, w, stride=s, padding=k // 2))

        def both():
            y = F.conv2d(x, w, stride=s, padding=k // 2)
            y.backward(grad)
        bwd = median_ms(a.repeats, both) - fwd
        areo_bwd = layer["areo_input_grad_ms"] + layer["areo_weight_grad_ms"]
        n = layer["count"]
        totals["areo"] += n * (layer["areo_forward_ms"] + areo_bwd)
        totals["torch"] += n * (fwd + bwd)
        totals["candle"] += n * (layer["candle_forward_ms"] + layer["candle_backward_ms"])
        print(f"{layer['layer']:34} {n:>2} {layer['areo_forward_ms']:9.2f} {fwd:7.2f} "
              f"{layer['candle_forward_ms']:7.2f} {areo_bwd:9.2f} {bwd:7.2f} "
              f"{layer['candle_backward_ms']:7.2f}", flush=True)
    print(f"# all layers, forward + backward, times their count: areo {totals['areo']:.0f} ms, "
          f"torch {totals['torch']:.0f} ms, candle {totals['candle']:.0f} ms")


if __name__ == "__main__":
    main()
