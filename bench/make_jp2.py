"""Writes the JPEG 2000 test files in data/jp2/ from the crater sample (lossless, so a
decoder must give back exactly the PNG's pixels):

  nanedi-16bit.jp2 + .png  the sample's left 200 x 120 px at 16 bits (value x 64 + x + y,
                           so neighbouring pixels differ), 3 wavelet levels, one tile, as
                           HiRISE RDRs store theirs
  nanedi-8bit.jp2  + .png  the same area at 8 bits, 64 x 64 px tiles

  python3 bench/make_jp2.py            # needs Pillow built with OpenJPEG
"""
import pathlib
import numpy as np
from PIL import Image

root = pathlib.Path(__file__).resolve().parent.parent
sample = np.array(Image.open(root / "data/craters/nanedi-512x320.png").convert("L"))[:120, :200]
out = root / "data/jp2"
out.mkdir(exist_ok=True)

ys, xs = np.mgrid[0:120, 0:200]
sixteen = (sample.astype(np.uint32) * 64 + xs + ys).astype(np.uint16)
image16 = Image.fromarray(sixteen)
image16.save(out / "nanedi-16bit.png")
image16.save(out / "nanedi-16bit.jp2", irreversible=False, num_resolutions=4)

image8 = Image.fromarray(sample)
image8.save(out / "nanedi-8bit.png")
image8.save(out / "nanedi-8bit.jp2", irreversible=False, tile_size=(64, 64), num_resolutions=3)
