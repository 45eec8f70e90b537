#!/usr/bin/env python3
"""PDS3 IMG products with known pixels, read by areo, GDAL and pdr.

Run by bench/pds3.sh. Each case writes a small product (3 lines x 4 samples, one or two bands)
covering one SAMPLE_TYPE / SAMPLE_BITS, a byte order, line prefixes and suffixes, one of the
three band storage orders, OFFSET / SCALING_FACTOR, a no-data form, and an attached or detached
label. The truth is the physical value of every sample, `raw * SCALING_FACTOR + OFFSET`, or no
data where the label says so (a declared constant, a bit pattern, outside VALID_MINIMUM ..
VALID_MAXIMUM, NaN), by the PDS3 Standards Reference. Each reader's values are compared with it
(to float32 precision, which areo keeps); for areo, the 8/16-bit samples tiling uses are checked
too: their recorded no-data sample must mark exactly the no-data pixels (a valid 0 stays valid).
The script fails when areo is wrong anywhere.
"""

import json
import math
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

AREO_VALUES = os.environ["AREO_VALUES"]
LINES, SAMPLES = 3, 4


# ------------------------------------------------------------------------- sample encoders


def vax_f(v):
    """VAX F_floating: IEEE single bits with the exponent raised by 2, 16-bit words swapped."""
    if v == 0:
        return bytes(4)
    bits = struct.unpack(">I", struct.pack(">f", v))[0] + (2 << 23)
    return struct.pack("<HH", bits >> 16, bits & 0xFFFF)


def vax_wide(v, exponent_bits):
    """VAX D (8-bit exponent) or G (11-bit) floating: sign, exponent biased by 2^(e-1), the
    fraction after a hidden 0.1, most significant 16-bit word first, each word little endian."""
    if v == 0:
        return bytes(8)
    fraction_bits = 63 - exponent_bits
    m, e = math.frexp(abs(v))
    exponent = e + (1 << (exponent_bits - 1))
    fraction = round((m * 2 - 1) * (1 << fraction_bits))
    bits = (int(v < 0) << 63) | (exponent << fraction_bits) | fraction
    return struct.pack("<HHHH", *[(bits >> s) & 0xFFFF for s in (48, 32, 16, 0)])


def encoder(kind, bits):
    little = kind.startswith(("LSB", "PC", "VAX"))
    order = "<" if little else ">"
    if "REAL" in kind:
        if kind.startswith("VAXG"):
            return lambda v: vax_wide(v, 11)
        if kind.startswith("VAX"):
            return vax_f if bits == 32 else (lambda v: vax_wide(v, 8))
        code = {32: "f", 64: "d"}[bits]
    else:
        signed = "UNSIGNED" not in kind
        code = {8: "b", 16: "h", 32: "i"}[bits]
        code = code if signed else code.upper()
    return lambda v: struct.pack(order + code, v)


# ---------------------------------------------------------------------------- the cases


def case(name, kind, bits, raw, *, bands=1, storage=None, prefix=0, suffix=0, scale=None, offset=None,
         extra="", no_data=lambda r: False, detached=False, bytes_pointer=False):
    return dict(name=name, kind=kind, bits=bits, raw=raw, bands=bands, storage=storage, prefix=prefix,
                suffix=suffix, scale=scale, offset=offset, extra=extra, no_data=no_data, detached=detached,
                bytes_pointer=bytes_pointer)


def grid(values, bands=1):
    """values cycled into bands x LINES x SAMPLES."""
    n = bands * LINES * SAMPLES
    return [values[i % len(values)] for i in range(n)]


def cases():
    u8 = grid([0, 1, 127, 128, 200, 254, 255, 7])
    i8 = grid([-128, -1, 0, 1, 127, 5])
    u16 = grid([0, 1, 1023, 32768, 65534, 65535, 300])
    i16 = grid([-32768, -1, 0, 1, 32767, 1234])
    u32 = grid([0, 1, 4294967295, 70000, 123456789])
    i32 = grid([-2147483648, -1, 0, 1, 2147483647, 99999])
    reals = grid([-1500.25, 0.0, 1.0, 2.5e-5, 3.0e30, -7.75, 1234.5678])
    out = [
        case("u8 plain", "UNSIGNED_INTEGER", 8, u8),
        case("u8 NULL = 255 (a valid 0)", "MSB_UNSIGNED_INTEGER", 8, u8, extra=" NULL = 255\r\n",
             no_data=lambda r: r == 255),
        case("u8 valid range 1..254", "LSB_UNSIGNED_INTEGER", 8, u8,
             extra=" VALID_MINIMUM = 1\r\n VALID_MAXIMUM = 254\r\n", no_data=lambda r: r < 1 or r > 254),
        case("i8", "MSB_INTEGER", 8, i8, extra=" MISSING_CONSTANT = -128\r\n", no_data=lambda r: r == -128),
        case("u16 MSB, CORE_NULL 0, scaled", "MSB_UNSIGNED_INTEGER", 16, u16, scale=1.0e-4, offset=0.08,
             extra=" CORE_NULL = 0\r\n", no_data=lambda r: r == 0),
        case("u16 LSB MISSING 65535", "LSB_UNSIGNED_INTEGER", 16, u16, extra=" MISSING_CONSTANT = 65535\r\n",
             no_data=lambda r: r == 65535),
        case("u16 PC, INVALID_CONSTANT 300", "PC_UNSIGNED_INTEGER", 16, u16, extra=" INVALID_CONSTANT = 300\r\n",
             no_data=lambda r: r == 300),
        case("i16 MSB", "MSB_INTEGER", 16, i16, extra=" NULL = -32768\r\n", no_data=lambda r: r == -32768),
        case("i16 VAX_INTEGER", "VAX_INTEGER", 16, i16),
        case("i16 SUN_INTEGER scaled", "SUN_INTEGER", 16, i16, scale=0.5, offset=-10.0),
        case("u16 MAC_UNSIGNED_INTEGER", "MAC_UNSIGNED_INTEGER", 16, u16),
        case("u32 VAX_UNSIGNED_INTEGER", "VAX_UNSIGNED_INTEGER", 32, u32),
        case("u32 MSB", "MSB_UNSIGNED_INTEGER", 32, u32),
        case("u32 LSB", "LSB_UNSIGNED_INTEGER", 32, u32),
        case("i32 MSB", "MSB_INTEGER", 32, i32),
        case("i32 PC", "PC_INTEGER", 32, i32, extra=" MISSING_CONSTANT = -2147483648\r\n",
             no_data=lambda r: r == -2147483648),
        case("f32 IEEE, ISIS NULL pattern", "IEEE_REAL", 32, grid([-1500.25, -3.4028226550889045e38, 2.5, 0.0]),
             extra=" NULL = 16#FF7FFFFB#\r\n", no_data=lambda r: r == struct.unpack(">f", bytes.fromhex("ff7ffffb"))[0]),
        case("f32 PC_REAL valid range", "PC_REAL", 32, reals,
             extra=" VALID_MINIMUM = -2000\r\n VALID_MAXIMUM = 2000\r\n", no_data=lambda r: r < -2000 or r > 2000),
        case("f32 VAX_REAL", "VAX_REAL", 32, reals),
        case("f32 SUN_REAL", "SUN_REAL", 32, reals),
        case("f64 MAC_REAL", "MAC_REAL", 64, reals),
        case("f64 IEEE_REAL", "IEEE_REAL", 64, reals),
        case("f64 PC_REAL", "PC_REAL", 64, reals, scale=2.0, offset=1.0),
        case("f64 VAX_REAL (D)", "VAX_REAL", 64, reals),
        case("f64 VAXG_REAL (G)", "VAXG_REAL", 64, reals),
        case("u8 prefix 3, suffix 2", "UNSIGNED_INTEGER", 8, u8, prefix=3, suffix=2),
        case("i16 prefix 4", "LSB_INTEGER", 16, i16, prefix=4),
    ]
    for storage in ("BAND_SEQUENTIAL", "LINE_INTERLEAVED", "SAMPLE_INTERLEAVED"):
        out.append(case(f"u16 2 bands {storage}", "MSB_UNSIGNED_INTEGER", 16,
                        grid([10, 20, 30, 40, 50, 60, 70], 2), bands=2, storage=storage))
        out.append(case(f"f32 2 bands {storage}, prefix 2", "PC_REAL", 32, grid([0.5, -1.25, 8.0, 3.0e3], 2),
                        bands=2, storage=storage, prefix=2))
    out.append(case("u8 detached label", "UNSIGNED_INTEGER", 8, u8, detached=True, extra=" NULL = 255\r\n",
                    no_data=lambda r: r == 255))
    out.append(case("i16 detached, byte pointer", "MSB_INTEGER", 16, i16, detached=True, bytes_pointer=True))
    return out


def raw_at(c, band, line, sample):
    """The raw value of a sample in (band, line, sample) order."""
    return c["raw"][(band * LINES + line) * SAMPLES + sample]


def truth(c):
    scale, offset = c["scale"] or 1.0, c["offset"] or 0.0
    t = np.empty((c["bands"], LINES, SAMPLES))
    for b in range(c["bands"]):
        for y in range(LINES):
            for x in range(SAMPLES):
                r = raw_at(c, b, y, x)
                if "REAL" in c["kind"] and c["bits"] == 32:
                    r = struct.unpack("f", struct.pack("f", r))[0]
                t[b, y, x] = math.nan if c["no_data"](r) or (isinstance(r, float) and math.isnan(r)) else r * scale + offset
    return t


def write(c, folder):
    encode = encoder(c["kind"], c["bits"])
    bands, storage = c["bands"], c["storage"] or "BAND_SEQUENTIAL"
    pad_line = lambda body: b"\x00" * c["prefix"] + body + b"\xee" * c["suffix"]
    data = b""
    if storage == "BAND_SEQUENTIAL":
        for b in range(bands):
            for y in range(LINES):
                data += pad_line(b"".join(encode(raw_at(c, b, y, x)) for x in range(SAMPLES)))
    elif storage == "LINE_INTERLEAVED":
        for y in range(LINES):
            for b in range(bands):
                data += pad_line(b"".join(encode(raw_at(c, b, y, x)) for x in range(SAMPLES)))
    else:
        for y in range(LINES):
            data += pad_line(b"".join(encode(raw_at(c, b, y, x)) for x in range(SAMPLES) for b in range(bands)))
    per_line = c["prefix"] + c["suffix"] + SAMPLES * c["bits"] // 8 * (bands if storage == "SAMPLE_INTERLEAVED" else 1)
    image = (
        "OBJECT = IMAGE\r\n"
        f" LINES = {LINES}\r\n LINE_SAMPLES = {SAMPLES}\r\n SAMPLE_TYPE = {c['kind']}\r\n"
        f" SAMPLE_BITS = {c['bits']}\r\n BANDS = {bands}\r\n BAND_STORAGE_TYPE = {storage}\r\n"
        f" LINE_PREFIX_BYTES = {c['prefix']}\r\n LINE_SUFFIX_BYTES = {c['suffix']}\r\n"
        + (f" SCALING_FACTOR = {c['scale']}\r\n" if c["scale"] is not None else "")
        + (f" OFFSET = {c['offset']}\r\n" if c["offset"] is not None else "")
        + c["extra"]
        + "END_OBJECT = IMAGE\r\nEND\r\n"
    )
    slug = "".join(ch if ch.isalnum() else "_" for ch in c["name"]).upper()
    if c["detached"]:
        (folder / f"{slug}.IMG").write_bytes(data)
        pointer = f'("{slug}.IMG", 1 <BYTES>)' if c["bytes_pointer"] else f'"{slug}.IMG"'
        label = (f"PDS_VERSION_ID = PDS3\r\nRECORD_TYPE = FIXED_LENGTH\r\nRECORD_BYTES = {per_line}\r\n"
                 f"FILE_RECORDS = {len(data) // per_line}\r\n^IMAGE = {pointer}\r\n{image}")
        path = folder / f"{slug}.LBL"
        path.write_text(label)
        return path
    # An attached label padded to whole records; the image starts at the next record.
    record = per_line
    for label_records in range(1, 10_000):
        label = (f"PDS_VERSION_ID = PDS3\r\nRECORD_TYPE = FIXED_LENGTH\r\nRECORD_BYTES = {record}\r\n"
                 f"FILE_RECORDS = {label_records + len(data) // record}\r\nLABEL_RECORDS = {label_records}\r\n"
                 f"^IMAGE = {label_records + 1}\r\n{image}").encode()
        if len(label) <= label_records * record:
            break
    path = folder / f"{slug}.IMG"
    path.write_bytes(label.ljust(label_records * record, b" ") + data)
    return path


# ------------------------------------------------------------------------------ readers


def read_areo(path, bands):
    run = subprocess.run([AREO_VALUES, str(path)], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(run.stderr.strip().splitlines()[-1])
    report = json.loads(run.stdout)
    physical = np.array([math.nan if v is None else v for v in report["physical"]], dtype=float)
    image = np.array(report["image"], dtype=float)
    shape = (LINES, SAMPLES, bands)
    return physical.reshape(shape).transpose(2, 0, 1), image.reshape(shape).transpose(2, 0, 1), report["values"]


def read_gdal(path, bands, folder):
    out = folder / (path.stem + ".gdal.bin")
    run = subprocess.run(["gdal_translate", "-q", "-of", "ENVI", "-ot", "Float64", str(path), str(out)],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "gdal_translate failed")
    info = json.loads(subprocess.run(["gdalinfo", "-json", str(path)], capture_output=True, text=True).stdout)
    values = np.fromfile(out, dtype="<f8").reshape(len(info["bands"]), LINES, SAMPLES)
    for b, band in enumerate(info["bands"]):
        if "noDataValue" in band:
            nodata = band["noDataValue"]
            values[b][values[b] == float(nodata)] = math.nan
        values[b] = values[b] * band.get("scale", 1.0) + band.get("offset", 0.0)
    return values


def read_pdr(path):
    import pdr

    data = pdr.read(str(path))
    image = data.get_scaled("IMAGE")
    if np.ma.isMaskedArray(image):
        image = image.astype(float).filled(math.nan)
    image = np.asarray(image, dtype=float)
    return image.reshape(-1, LINES, SAMPLES) if image.ndim == 2 else image


def agreement(got, want):
    """'ok' or what differs first, to float32 precision."""
    if got.shape != want.shape:
        return f"shape {got.shape}, expected {want.shape}"
    wrong = []
    for index in np.ndindex(want.shape):
        a, b = got[index], want[index]
        if math.isnan(b) and math.isnan(a):
            continue
        if math.isnan(a) != math.isnan(b) or abs(a - b) > 1e-6 * max(1.0, abs(b)):
            wrong.append((index, b, a))
    if not wrong:
        return "ok"
    (b, y, x), want_v, got_v = wrong[0]
    return f"{len(wrong)} wrong; [{b},{y},{x}] {want_v:.9g} read as {got_v:.9g}"


def main():
    folder = Path(tempfile.mkdtemp(prefix="areo-pds3-"))
    areo_wrong = 0
    rows = []
    for c in cases():
        path = write(c, folder)
        want = truth(c)
        row = [c["name"]]
        try:
            physical, image, values = read_areo(path, c["bands"])
            verdict = agreement(physical, want)
            marker = values and values.get("no_data")
            marked = (image == marker) if marker is not None else np.zeros_like(image, dtype=bool)
            if verdict == "ok" and not np.array_equal(marked, np.isnan(want)):
                verdict = f"no-data sample {marker} marks {int(marked.sum())} pixels, {int(np.isnan(want).sum())} are no data"
        except Exception as error:  # a refusal is a failure here: every case is valid PDS3
            verdict = f"error: {error}"
        areo_wrong += verdict != "ok"
        row.append(verdict)
        for reader in (lambda: read_gdal(path, c["bands"], folder), lambda: read_pdr(path)):
            try:
                row.append(agreement(reader(), want))
            except Exception as error:
                row.append(f"error: {str(error)[:60]}")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows + [["case", "areo", "GDAL", "pdr"]]) for i in range(4)]
    widths = [min(w, 60) for w in widths]
    header = ["case", "areo", "GDAL", "pdr"]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(cell[:60].ljust(w) for cell, w in zip(row, widths)))
    print()
    for name, i in (("areo", 1), ("GDAL", 2), ("pdr", 3)):
        print(f"{name}: {sum(r[i] == 'ok' for r in rows)} of {len(rows)} products read exactly")
    print(f"products kept in {folder}")
    return 1 if areo_wrong else 0


if __name__ == "__main__":
    sys.exit(main())
