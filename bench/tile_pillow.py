"""The same job as `areo tile IMAGE --size S --out DIR`, done the usual Python way:
Pillow decodes the whole image (a PDS3 IMG is memory-mapped by numpy instead, the label's
few keys read with a regular expression), numpy slices chips (the last row/column shifted inward, as
areo's default edge policy), Pillow writes each chip as PNG.

    python3 bench/tile_pillow.py IMAGE SIZE OUT
"""
import os
import re
import sys

import numpy as np
from PIL import Image

Image.MAX_IMAGE_PIXELS = None


def starts(extent, size):
    out = list(range(0, extent - size + 1, size))
    if out[-1] + size < extent:
        out.append(extent - size)
    return out


def img_pixels(path):
    """An 8-bit, one-band IMG with its label attached, as make_scene.py writes it."""
    with open(path, "rb") as f:
        label = f.read(65536).split(b"\r\nEND\r\n")[0].decode()
    key = lambda name: int(re.search(rf"(?m)^\s*{name}\s*=\s*(\d+)", label).group(1))
    offset = (key(r"\^IMAGE") - 1) * key("RECORD_BYTES")
    shape = (key("LINES"), key("LINE_SAMPLES"))
    return np.memmap(path, np.uint8, "r", offset, shape)


def main():
    path, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(out, exist_ok=True)
    if path.upper().endswith(".IMG"):
        pixels = img_pixels(path)
    else:
        pixels = np.asarray(Image.open(path))
    height, width = pixels.shape[:2]
    stem = os.path.splitext(os.path.basename(path))[0]
    count = 0
    for y in starts(height, size):
        for x in starts(width, size):
            chip = pixels[y : y + size, x : x + size]
            Image.fromarray(chip).save(os.path.join(out, f"{stem}_{x}_{y}.png"))
            count += 1
    print(count)


if __name__ == "__main__":
    main()
