"""The SSD of areo's `models/*.toml` (kind = "ssd") in PyTorch, timed the way `areo bench model`
times it.

Same architecture as src/nn/models/ssd: the ResNet encoder of unet_torch.py (BasicBlocks,
torchvision layout), and on each map the grids pick (stride tile / grid) a 3x3 conv-BN-ReLU
head with 3x3 convolutions for every anchor's class logits and box offsets. Inference is the
forward pass with the sigmoid (areo's also decodes and suppresses the anchors above the least
score, but untrained weights score every anchor at the 0.01 prior, below it, so that is a copy
of the scores to the host); a training step is forward, anchor matching against the chips' objects (none,
as areo's bench chips carry none), torchvision's sigmoid focal loss plus L1 over the matched
anchors, backward and AdamW. Prints `<figure> torch=<seconds>` lines.

usage: python3 ssd_torch.py CONFIG.toml [--device cpu|cuda] [--threads N] [--tile S]
       [--infer-batches 1,4] [--train-batch 4] [--repeats 5]
"""
import argparse
import statistics
import time
import tomllib

import torch
import torch.nn as nn
import torch.nn.functional as F

from unet_torch import ConvBn, Encoder, median_time

STRIDES = [2, 4, 8, 16, 32]


class Ssd(nn.Module):
    def __init__(self, model, tile):
        super().__init__()
        self.encoder = Encoder(model)
        widths = self.encoder.widths
        self.per_cell = len(model.get("zooms", [1.0])) * len(model.get("ratios", [1.0]))
        self.foreground = model["classes"] - 1
        head = model.get("head", 64)
        self.maps = [STRIDES.index(tile // g) for g in model["grids"]]
        self.hidden = nn.ModuleList(ConvBn(widths[m], head, 3, 1, 1) for m in self.maps)
        self.classes = nn.ModuleList(nn.Conv2d(head, self.per_cell * self.foreground, 3, 1, 1) for _ in self.maps)
        self.boxes = nn.ModuleList(nn.Conv2d(head, self.per_cell * 4, 3, 1, 1) for _ in self.maps)

    def forward(self, x):
        feats = self.encoder(x)
        classes, boxes = [], []
        n = x.shape[0]
        for m, hidden, cls, box in zip(self.maps, self.hidden, self.classes, self.boxes):
            h = F.relu(hidden(feats[m]))
            c, b = cls(h), box(h)
            rows, cols = c.shape[2:]
            classes.append(c.view(n, self.per_cell, self.foreground, rows, cols).permute(0, 3, 4, 1, 2).reshape(n, -1, self.foreground))
            boxes.append(b.view(n, self.per_cell, 4, rows, cols).permute(0, 3, 4, 1, 2).reshape(n, -1, 4))
        return torch.cat(classes, 1), torch.cat(boxes, 1)


def focal_sum(logits, targets, alpha, gamma):
    """torchvision.ops.sigmoid_focal_loss(reduction="sum"), written out so no torchvision is needed."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * loss).sum()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--tile", type=int, default=0)
    p.add_argument("--infer-batches", default="1,4")
    p.add_argument("--train-batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    with open(a.config, "rb") as f:
        config = tomllib.load(f)
    tile = a.tile or config.get("train", {}).get("tile", 256)
    cfg = config["model"]
    torch.manual_seed(0)
    model = Ssd(cfg, tile).to(a.device)
    params = sum(p.numel() for p in model.parameters())
    print(f"# {config['name']} ({params} parameters) at {tile} px on {a.device}, torch {torch.__version__}", flush=True)
    model.eval()
    for batch in [int(b) for b in a.infer_batches.split(",") if b]:
        x = torch.randn(batch, cfg["in_channels"], tile, tile, device=a.device)
        with torch.no_grad():
            seconds = median_time(a.repeats, a.device, lambda: torch.sigmoid(model(x)[0]))
        print(f"infer_b{batch} torch={seconds / batch:.6f}", flush=True)
    if a.train_batch:
        model.train()
        b = a.train_batch
        x = torch.randn(b, cfg["in_channels"], tile, tile, device=a.device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        alpha, gamma = cfg.get("focal_alpha", 0.25), cfg.get("focal_gamma", 1.0)
        phases = []

        def step():
            start = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            classes, offsets = model(x)
            # No objects: every anchor is background, none learns a box.
            targets = torch.zeros_like(classes)
            positive = torch.zeros(offsets.shape[:2] + (1,), device=a.device)
            loss = focal_sum(classes, targets, alpha, gamma) + (offsets.abs() * positive).sum()
            forward = time.perf_counter()
            loss.backward()
            backward = time.perf_counter()
            opt.step()
            phases.append((forward - start, backward - forward, time.perf_counter() - backward))

        seconds = median_time(a.repeats, a.device, step)
        print(f"train_b{b} torch={seconds:.6f}", flush=True)
        if a.device == "cpu":
            timed = phases[2:]
            for i, name in enumerate(["forward", "backward", "optimiser"]):
                phase = statistics.median(p[i] for p in timed)
                print(f"train_b{b}_{name} torch={phase:.6f}", flush=True)


if __name__ == "__main__":
    main()
