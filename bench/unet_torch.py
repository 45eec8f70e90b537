"""The U-Net of areo's `models/*.toml` in PyTorch, timed the way `areo bench unet` times it.

Same architecture as src/nn/model.rs: ResNet encoder (BasicBlocks, torchvision layout), a
decoder of nearest x2 upsampling + skip concatenation + two 3x3 conv-BN-ReLU per scale, a 3x3
head. Prints `<figure> torch=<seconds>` lines: inference seconds per image (eval mode,
no_grad) at each batch size, and seconds per training step (forward, CE loss, backward, AdamW).

usage: python3 unet_torch.py CONFIG.toml [--device cpu|cuda] [--threads N] [--tile S]
       [--infer-batches 1,4] [--train-batch 4] [--repeats 5] [--image PNG]
"""
import argparse
import statistics
import time
import tomllib

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}


class ConvBn(nn.Sequential):
    def __init__(self, cin, cout, k, stride, pad):
        super().__init__(nn.Conv2d(cin, cout, k, stride, pad, bias=False), nn.BatchNorm2d(cout))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.first = ConvBn(cin, cout, 3, stride, 1)
        self.second = ConvBn(cout, cout, 3, 1, 1)
        self.down = ConvBn(cin, cout, 1, stride, 0) if stride != 1 or cin != cout else None

    def forward(self, x):
        y = self.second(F.relu(self.first(x)))
        return F.relu(y + (self.down(x) if self.down is not None else x))


class Encoder(nn.Module):
    """The ResNet backbone of every family: the stem's map (stride 2) and each stage's."""

    def __init__(self, model):
        super().__init__()
        blocks = PRESETS.get(model["encoder"]) or model["blocks"]
        self.widths = model.get("widths", [64, 64, 128, 256, 512])
        self.stem = ConvBn(model["in_channels"], self.widths[0], 7, 2, 3)
        stages, cin = [], self.widths[0]
        for s, count in enumerate(blocks):
            layer = []
            for b in range(count):
                layer.append(Block(cin, self.widths[s + 1], 2 if s > 0 and b == 0 else 1))
                cin = self.widths[s + 1]
            stages.append(nn.Sequential(*layer))
        self.stages = nn.ModuleList(stages)

    def forward(self, x):
        stem = F.relu(self.stem(x))
        y = F.max_pool2d(stem, 3, 2, 1)
        feats = [stem]
        for stage in self.stages:
            y = stage(y)
            feats.append(y)
        return feats


class UNet(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.encoder = Encoder(model)
        widths = self.encoder.widths
        decoder = model.get("decoder", [256, 128, 64, 32, 16])
        skips = [widths[3], widths[2], widths[1], widths[0], 0]
        dec, cin = [], widths[4]
        for out, skip in zip(decoder, skips):
            dec.append(nn.Sequential(ConvBn(cin + skip, out, 3, 1, 1), nn.ReLU(), ConvBn(out, out, 3, 1, 1), nn.ReLU()))
            cin = out
        self.decoder = nn.ModuleList(dec)
        self.head = nn.Conv2d(cin, model["classes"], 3, 1, 1)

    def forward(self, x):
        feats = self.encoder(x)
        y = feats.pop()
        for block in self.decoder:
            y = F.interpolate(y, scale_factor=2, mode="nearest")
            if feats:
                y = torch.cat([y, feats.pop()], 1)
            y = block(y)
        return self.head(y)


def median_time(repeats, device, work):
    for _ in range(2):
        work()
    sync(device)
    times = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        work()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--tile", type=int, default=0)
    p.add_argument("--infer-batches", default="1,4")
    p.add_argument("--train-batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--tf32", action="store_true", help="allow TF32 (PyTorch's cuDNN default); off: strict fp32 like areo")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = a.tf32
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
    with open(a.config, "rb") as f:
        config = tomllib.load(f)
    tile = a.tile or config.get("train", {}).get("tile", 256)
    model_cfg = config["model"]
    torch.manual_seed(0)
    model = UNet(model_cfg).to(a.device)
    params = sum(p.numel() for p in model.parameters())
    print(f"# {config['name']} ({params} parameters) at {tile} px on {a.device}, torch {torch.__version__}", flush=True)
    model.eval()
    for batch in [int(b) for b in a.infer_batches.split(",") if b]:
        x = torch.randn(batch, model_cfg["in_channels"], tile, tile, device=a.device)
        with torch.no_grad():
            seconds = median_time(a.repeats, a.device, lambda: model(x))
        print(f"infer_b{batch} torch={seconds / batch:.6f}", flush=True)
    if a.train_batch:
        model.train()
        b = a.train_batch
        x = torch.randn(b, model_cfg["in_channels"], tile, tile, device=a.device)
        y = torch.randint(0, model_cfg["classes"], (b, tile, tile), device=a.device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        # Seconds of each phase per step (CPU only: on a GPU they would need a sync each).
        phases = []

        def step():
            start = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            forward = time.perf_counter()
            loss.backward()
            backward = time.perf_counter()
            opt.step()
            phases.append((forward - start, backward - forward, time.perf_counter() - backward))

        if a.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        seconds = median_time(a.repeats, a.device, step)
        print(f"train_b{b} torch={seconds:.6f}", flush=True)
        if a.device == "cpu":
            timed = phases[2:]  # after the two warm-up steps
            for i, name in enumerate(["forward", "backward", "optimiser"]):
                phase = statistics.median(p[i] for p in timed)
                print(f"train_b{b}_{name} torch={phase:.6f}", flush=True)
        if a.device.startswith("cuda"):
            print(f"# peak memory in the training step: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
