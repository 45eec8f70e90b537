"""torchvision ResNets with random weights, for checking that areo loads torchvision's names.

    python3 backbone_torch.py save DIR [--depth 18|34] [--tiny]
        DIR/backbone.pth: the network's state dict (torch.save, as torchvision's downloads
        are), with random batch-norm running statistics so folding them is tested too;
        DIR/input.safetensors: two 3-band 224 px inputs (--tiny: one band, 64 x 32);
        DIR/features.safetensors:
        PyTorch's maps in evaluation mode, `stem` (after conv1, bn1, ReLU: stride 2) and
        `layer1` to `layer4` (strides 4 to 32).
    python3 backbone_torch.py compare DIR AREO.safetensors
        The largest absolute difference of each map from areo's (what
        examples/backbone_features.rs wrote), relative to the map's largest value.

`--tiny` builds torchvision's BasicBlock ResNet with widths 4/4/8/8/8 and one block a stage on
one band, a few kilobytes: the fixture tests/data/tiny-resnet.pth.
"""
import argparse
import sys

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file
from torchvision.models import resnet18, resnet34
from torchvision.models.resnet import BasicBlock


def tiny():
    """torchvision's module names (conv1, bn1, layerN.M.conv1, downsample.0/1) at small widths."""
    net = nn.Module()
    net.conv1 = nn.Conv2d(1, 4, 7, 2, 3, bias=False)
    net.bn1 = nn.BatchNorm2d(4)
    widths, inplanes = [4, 8, 8, 8], 4
    for stage, planes in enumerate(widths):
        stride = 1 if stage == 0 else 2
        down = None
        if stride != 1 or inplanes != planes:
            down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        setattr(net, f"layer{stage + 1}", nn.Sequential(BasicBlock(inplanes, planes, stride, down)))
        inplanes = planes
    return net


def features(net, x):
    stem = torch.relu(net.bn1(net.conv1(x)))
    y = nn.functional.max_pool2d(stem, 3, 2, 1)
    out = {"stem": stem}
    for i in range(1, 5):
        y = getattr(net, f"layer{i}")(y)
        out[f"layer{i}"] = y
    return out


def save(a):
    torch.manual_seed(7)
    net = tiny() if a.tiny else {18: resnet18, 34: resnet34}[a.depth](weights=None)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    net.eval()
    x = torch.randn(1, 1, 32, 64) if a.tiny else torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        maps = features(net, x)
    torch.save(net.state_dict(), f"{a.dir}/backbone.pth")
    save_file({"input": x.contiguous()}, f"{a.dir}/input.safetensors")
    save_file({k: v.contiguous() for k, v in maps.items()}, f"{a.dir}/features.safetensors")
    print(f"# {sum(p.numel() for p in net.parameters())} parameters, torch {torch.__version__}")


def compare(a):
    want, got = load_file(f"{a.dir}/features.safetensors"), load_file(a.areo)
    worst = 0.0
    for name, w in want.items():
        g = got[name]
        assert g.shape == w.shape, f"{name}: areo {tuple(g.shape)}, torch {tuple(w.shape)}"
        diff = (g - w).abs().max().item() / max(w.abs().max().item(), 1e-12)
        worst = max(worst, diff)
        print(f"{name} {tuple(w.shape)} largest difference / largest value {diff:.2e}")
    print(f"worst {worst:.2e}")
    sys.exit(0 if worst <= 1e-4 else 1)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("save")
    s.add_argument("dir")
    s.add_argument("--depth", type=int, default=18)
    s.add_argument("--tiny", action="store_true")
    c = sub.add_parser("compare")
    c.add_argument("dir")
    c.add_argument("areo")
    a = p.parse_args()
    save(a) if a.command == "save" else compare(a)


if __name__ == "__main__":
    main()
