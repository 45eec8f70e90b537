"""Writes a SIDE x SIDE 8-bit greyscale PNG with Mars-like texture (smooth relief plus
noise), strip by strip so making it does not need the whole image in memory; or, when OUT
ends in .IMG, the same pixels as a PDS3 IMG with its label attached.

    python3 bench/make_scene.py SIDE OUT.png|OUT.IMG
"""
import sys
import zlib
import struct

import numpy as np


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def strips(side):
    rng = np.random.default_rng(7)
    xs = np.arange(side, dtype=np.float32)
    for top in range(0, side, 256):
        rows = min(256, side - top)
        ys = np.arange(top, top + rows, dtype=np.float32)[:, None]
        relief = 100 + 60 * np.sin(xs / 173.0) * np.cos(ys / 211.0)
        strip = relief + rng.normal(0, 12, (rows, side))
        yield np.clip(strip, 0, 255).astype(np.uint8)


def write_img(side, out):
    label = (
        "PDS_VERSION_ID = PDS3\r\nRECORD_TYPE = FIXED_LENGTH\r\n"
        f"RECORD_BYTES = {side}\r\n^IMAGE = LABEL_RECORDS_PLUS_ONE\r\n"
        "OBJECT = IMAGE\r\n"
        f" LINES = {side}\r\n LINE_SAMPLES = {side}\r\n SAMPLE_BITS = 8\r\n"
        " SAMPLE_TYPE = UNSIGNED_INTEGER\r\nEND_OBJECT = IMAGE\r\nEND\r\n"
    )
    records = -(-len(label) // side) + 1
    label = label.replace("LABEL_RECORDS_PLUS_ONE", str(records).ljust(22))
    head = label.encode().ljust((records - 1) * side, b" ")
    with open(out, "wb") as f:
        f.write(head)
        for strip in strips(side):
            f.write(strip.tobytes())


def main():
    side, out = int(sys.argv[1]), sys.argv[2]
    if out.upper().endswith(".IMG"):
        write_img(side, out)
        return
    with open(out, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)))
        compressor = zlib.compressobj(1)
        for strip in strips(side):
            rows = strip.shape[0]
            raw = np.concatenate([np.zeros((rows, 1), np.uint8), strip], axis=1).tobytes()
            data = compressor.compress(raw)
            if data:
                f.write(chunk(b"IDAT", data))
        f.write(chunk(b"IDAT", compressor.flush()))
        f.write(chunk(b"IEND", b""))


if __name__ == "__main__":
    main()
