#!/usr/bin/env python3
"""Generates the PIL/torchvision reference fixtures in this folder (tests/data/pil_reference/).

    python3 tests/data/pil_reference/make_fixtures.py [--photo-debs DIR] [--out DIR]

Needs Pillow, numpy and torchvision (Debian: python3-pil python3-numpy python3-torchvision) and the
three Debian wallpaper .debs that bench/debian_photos.py fetches (apt-get download into
~/.cache/jepa-photos unless --photo-debs DIR holds them). Deterministic for given Pillow,
libjpeg-turbo and package versions; the versions used are in manifest.txt's header.

Files written (all small: ~157x117 / 117x157 images, neither side a multiple of 8):
  rgb444.jpg       157x117 LadyBird (mate-backgrounds)      q95, 4:4:4 (subsampling=0), baseline
  rgb420.jpg       117x157 Kite (plasma)                    q90, 4:2:0 (subsampling=2), baseline
  rgb422.jpg       155x117 ColorfulCups (plasma)            q90, 4:2:2 (subsampling=1), baseline
  progressive.jpg  157x115 Bridge (lomiri-16.04)            q90, 4:2:0, progressive=True
  grey.jpg         153x119 Grey (plasma, 1-channel photo)   q90, mode L (one component)
  cmyk.jpg         157x117 Aqua (mate-backgrounds)          q90, mode CMYK (4:4:4), from PIL's RGB->CMYK
                   (C=255-R, M=255-G, Y=255-B, K=0); Pillow stores CMYK inverted with an Adobe APP14
                   marker (transform 0), as Photoshop does, i.e. the stored samples are 255-C etc.
  <name>.full.png  Image.open(<name>).convert('RGB'): Pillow's full decode (libjpeg-turbo defaults:
                   JDCT_ISLOW, fancy upsampling, block smoothing for progressive). For cmyk.jpg,
                   Pillow reads the Adobe file as inverted CMYK (rawmode 'CMYK;I') and converts
                   with R = round((255 - C) * (255 - K) / 255) (likewise G/M, B/Y; checked on
                   Pillow 9.4); with K = 0 everywhere here, R is simply the stored sample.
  <name>.<kind>.rgb  raw uint8 RGB, row-major HWC, size*size*3 bytes, one per manifest line
  manifest.txt     one reference per line, whitespace separated ('#' lines are comments):
                     <jpeg> crop <top> <left> <height> <width> <size> <ref.rgb>
                       = Image.open(jpeg).convert('RGB').crop((left, top, left+width, top+height))
                               .resize((size, size), Image.BILINEAR)
                         i.e. torchvision's RandomResizedCrop on a PIL image once it has drawn
                         (top, left, height, width) (checked against F.resized_crop here);
                     <jpeg> eval 0 0 0 0 <size> <ref.rgb>
                       = transforms.Resize(size*256//224) (shorter side to that, longer side
                         int(short*long/short_old)) then transforms.CenterCrop(size), torchvision
                         on the PIL image (the usual evaluation transform).
                   Per JPEG: 6 crops (size 32 and 24: ~4x and ~2x downscale, upscale, boxes on the
                   right/bottom and left/bottom edges, odd offsets, aspect 3/4..4/3, RRC's
                   whole-image fallback box, an exact 1:1 box) and 2 evals (32 and 24).

The cuts are LANCZOS downscales (box pre-reduction, as in bench/make_photo_corpus.py) of fixed
windows of the photographs; the crop boxes are fixed templates with per-image jitter from a seeded
RNG. The folder stays under 300 KB (checked at the end).
"""
import argparse
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "bench"))
import debian_photos  # noqa: E402

debian_photos.reexec_with_system_python(("PIL", "numpy", "torchvision"))

import numpy as np  # noqa: E402
import PIL  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image, features  # noqa: E402
from torchvision import transforms  # noqa: E402
from torchvision.transforms import functional as F  # noqa: E402

# name -> (photo, window centre x, y and width as fractions of the photo, output w, h, mode, save args)
FIXTURES = [
    ("rgb444", "LadyBird", (0.66, 0.47, 0.25), (157, 117), "RGB", dict(quality=95, subsampling=0)),
    ("rgb420", "Kite", (0.62, 0.42, 0.20), (117, 157), "RGB", dict(quality=90, subsampling=2)),
    ("rgb422", "ColorfulCups", (0.55, 0.45, 0.30), (155, 117), "RGB", dict(quality=90, subsampling=1)),
    ("progressive", "Bridge", (0.50, 0.50, 0.50), (157, 115), "RGB",
     dict(quality=90, subsampling=2, progressive=True)),
    ("grey", "Grey", (0.50, 0.62, 0.30), (153, 119), "L", dict(quality=90)),
    ("cmyk", "Aqua", (0.50, 0.50, 0.40), (157, 117), "CMYK", dict(quality=90)),
]
SIZE_LIMIT = 300 * 1000


def cut(photo_path, centre, out_size, mode):
    cx, cy, fw = centre
    with Image.open(photo_path) as f:
        src = f.convert("L") if (f.mode == "L" or mode == "L") else f.convert("RGB")
    sw, sh = src.size
    ww = min(fw * sw, sh * out_size[0] / out_size[1])  # window: output aspect, inside the photo
    wh = ww * out_size[1] / out_size[0]
    x0 = min(max(0.0, cx * sw - ww / 2), sw - ww)
    y0 = min(max(0.0, cy * sh - wh / 2), sh - wh)
    img = src.resize(out_size, Image.LANCZOS, box=(x0, y0, x0 + ww, y0 + wh), reducing_gap=3.0)
    img.info.pop("comment", None)
    return img.convert("CMYK") if mode == "CMYK" else img


def rrc_fallback_box(w, h):
    """torchvision RandomResizedCrop.get_params' fallback (whole image, ratio clamped to 3/4..4/3)."""
    ratio = w / h
    if ratio < 3 / 4:
        cw, ch = w, int(round(w / (3 / 4)))
    elif ratio > 4 / 3:
        ch, cw = h, int(round(h * 4 / 3))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def crop_boxes(w, h, rng):
    """6 (top, left, height, width, size) boxes inside a w x h image."""
    odd = lambda hi: rng.randrange(1, max(2, hi), 2) if hi > 1 else 0  # noqa: E731
    boxes = []
    # ~4x downscale to 32 (as wide as allowed), aspect within 3/4..4/3, odd offsets
    bw = min(w - 3, 4 * 32 - rng.randrange(0, 8))
    bh = min(h - 2, round(bw / rng.uniform(0.95, 4 / 3)))
    boxes.append((odd(h - bh), odd(w - bw), bh, bw, 32))
    # ~2x downscale to 24, touching the right and bottom edges
    bw = 48 + rng.randrange(-3, 4)
    bh = round(bw / rng.uniform(3 / 4, 4 / 3))
    boxes.append((h - bh, w - bw, bh, bw, 24))
    # upscale to 32 (box 17-27 px), odd offsets
    bw, bh = rng.randrange(17, 28), rng.randrange(17, 28)
    boxes.append((odd(h - bh), odd(w - bw), bh, bw, 32))
    # aspect 3/4 (tall), ~1.5x, touching the left and bottom edges
    bh = rng.randrange(35, 42)
    bw = round(bh * 3 / 4)
    boxes.append((h - bh, 0, bh, bw, 24))
    # RandomResizedCrop's whole-image fallback box, to 24
    boxes.append(rrc_fallback_box(w, h) + (24,))
    # exact 1:1 box (no resampling) for about half the images, else aspect 4/3 wide, mixed scale
    if rng.random() < 0.5:
        boxes.append((odd(h - 24), odd(w - 24), 24, 24, 24))
    else:
        bw = rng.randrange(40, 57)
        bh = round(bw * 3 / 4)
        boxes.append((odd(h - bh), odd(w - bw), bh, bw, 24))
    for top, left, bh, bw, _ in boxes:
        assert 0 <= top and 0 <= left and top + bh <= h and left + bw <= w and bh > 0 and bw > 0
    return boxes


def eval_transform(size):
    kw = {}
    try:
        transforms.Resize(size, antialias=True)
        kw["antialias"] = True
    except TypeError:
        pass
    return transforms.Compose([transforms.Resize(size * 256 // 224, **kw), transforms.CenterCrop(size)])


def rgb_bytes(img, size):
    assert img.mode == "RGB" and img.size == (size, size), (img.mode, img.size)
    data = np.asarray(img, dtype=np.uint8).tobytes()
    assert len(data) == size * size * 3
    return data


def main():
    ap = argparse.ArgumentParser(description="PIL/torchvision reference fixtures for the C++ JPEG pipeline test",
                                 epilog="See the docstring at the top of this file.")
    ap.add_argument("--photo-debs", help="folder holding the three .debs (default: apt-get download into the cache)")
    ap.add_argument("--out", default=HERE, help="output folder (default: this script's folder)")
    a = ap.parse_args()
    photos = dict(debian_photos.ensure_photos(a.photo_debs))
    os.makedirs(a.out, exist_ok=True)
    for f in os.listdir(a.out):  # start clean: stale references must not survive
        if f.endswith((".jpg", ".png", ".rgb")) or f == "manifest.txt":
            os.remove(os.path.join(a.out, f))

    turbo = features.version("libjpeg_turbo") if features.check_feature("libjpeg_turbo") else None
    lines = [
        "# PIL/torchvision references for jepa-lab's JPEG decode + crop/resize path.",
        "# Generated by tests/data/pil_reference/make_fixtures.py (see its docstring) with Pillow %s "
        "(libjpeg-turbo %s), torchvision %s, numpy %s, photos from Debian 12 packages %s."
        % (PIL.__version__, turbo or "no", torchvision.__version__, np.__version__,
           ", ".join("%s %s" % kv for kv in debian_photos.EXPECTED_VERSIONS.items())),
        "# Decode reference: Image.open(jpeg).convert('RGB'); raw .rgb files are uint8 RGB, row-major HWC.",
        "# <jpeg> crop <top> <left> <height> <width> <size> <ref.rgb>: .crop((left, top, left+width, top+height))"
        ".resize((size, size), Image.BILINEAR)",
        "# <jpeg> eval 0 0 0 0 <size> <ref.rgb>: torchvision Resize(size*256//224) + CenterCrop(size)",
    ]
    for name, photo, centre, out_size, mode, save in FIXTURES:
        jpeg = name + ".jpg"
        path = os.path.join(a.out, jpeg)
        cut(photos[photo], centre, out_size, mode).save(path, "JPEG", **save)
        with Image.open(path) as f:
            assert f.mode == mode and f.size == out_size, (name, f.mode, f.size)
            assert bool(f.info.get("progressive")) == bool(save.get("progressive")), name
            full = f.convert("RGB")
        full.save(os.path.join(a.out, name + ".full.png"), optimize=True)
        w, h = full.size
        assert w % 8 and h % 8, (name, w, h)
        rng = random.Random("pil_reference:" + name)
        for k, (top, left, bh, bw, size) in enumerate(crop_boxes(w, h, rng)):
            ref = full.crop((left, top, left + bw, top + bh)).resize((size, size), Image.BILINEAR)
            tv = F.resized_crop(full, top, left, bh, bw, [size, size], transforms.InterpolationMode.BILINEAR)
            assert rgb_bytes(tv, size) == rgb_bytes(ref, size), (name, k)
            rgb = "%s.crop%d.rgb" % (name, k)
            with open(os.path.join(a.out, rgb), "wb") as f:
                f.write(rgb_bytes(ref, size))
            lines.append("%s crop %d %d %d %d %d %s" % (jpeg, top, left, bh, bw, size, rgb))
        for size in (32, 24):
            rgb = "%s.eval%d.rgb" % (name, size)
            with open(os.path.join(a.out, rgb), "wb") as f:
                f.write(rgb_bytes(eval_transform(size)(full), size))
            lines.append("%s eval 0 0 0 0 %d %s" % (jpeg, size, rgb))
    with open(os.path.join(a.out, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")

    total = sum(os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out)
                if os.path.isfile(os.path.join(a.out, f)))
    print("wrote %d references for %d JPEGs to %s: %.1f KB in the folder (limit %d KB)"
          % (sum(not l.startswith("#") for l in lines), len(FIXTURES), a.out, total / 1000, SIZE_LIMIT // 1000))
    if total > SIZE_LIMIT:
        sys.exit("error: the folder exceeds %d KB" % (SIZE_LIMIT // 1000))


if __name__ == "__main__":
    main()
