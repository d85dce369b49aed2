#!/usr/bin/env python3
"""Builds an ImageNet-like stand-in image folder from real photographs (Debian wallpaper packages).

    python3 bench/make_photo_corpus.py OUT_DIR [--files 3000] [--classes 100] [--val-per-class 5]
                                       [--seed 0] [--photo-debs DIR] [--jobs N] [--force]
                                       [--min-bpp 6.0] [--tries 6]

Output (torchvision ImageFolder layout):
    OUT_DIR/train/cNNN/NNNNN.JPEG    --files images, spread round-robin over --classes classes
    OUT_DIR/val/cNNN/NNNNN.JPEG      --val-per-class images per class (on top of --files)
    OUT_DIR/corpus_info.json         parameters, versions and the statistics printed at the end

Source photographs: the 36 photos listed in bench/debian_photos.py, taken from the .debs of
mate-backgrounds, plasma-workspace-wallpapers and lomiri-wallpapers-16.04. Without --photo-debs the
.debs are fetched with `apt-get download` into ~/.cache/jepa-photos (or $JEPA_PHOTO_CACHE) and only
the photographs are extracted there; nothing is installed.

Per file (ImageNet conventions, see shared/DATA_PIPELINE_NOTES.md sections 2 and 7):
  * shape: ~42% 500x375, 16% 375x500, 10% 500x333, 4% 333x500, 6% 500x500, 8% 500xN (N 280-450),
    12% small (long side 300-400), 2% large (1.0-2.0 MP);
  * source photo: wallpaper photos are smoother than ImageNet (whole-photo q96 4:4:4 bits/pixel
    range from 1.4 to 8.9), so the files are spread over the 36 photos in proportion to
    (whole-photo bits/pixel)^1.5 (18-286 files per photo for 3500 files), in seeded random order;
  * window: output aspect, 1.25x to the largest size the photo allows (log-uniform), random
    position. Up to --tries windows are scored by the bits/pixel of a half-size BOX-filtered preview
    encoded at q96 4:4:4; the first reaching --min-bpp is taken, else the densest, so flat sky or
    bokeh is mostly avoided and bits/pixel (not only bytes) come out ImageNet-like;
  * downscale with an antialiased filter: box-reduce by a power of 2 (precomputed once per photo),
    then PIL LANCZOS by the remaining factor, 1.25-4 (the same scheme as Pillow's reducing_gap);
  * encode baseline JPEG, standard Huffman tables, JFIF, no other markers: 75% quality 96 4:4:4
    (subsampling=0), 25% quality 90 4:2:0 (subsampling=2). Files cut from the 1-channel 'Grey'
    photo stay greyscale (~2% of the files; ImageNet has a few percent greyscale JPEGs).
The result is deterministic for a seed, the parameters and the package/Pillow versions, independent
of --jobs (each file has its own RNG stream). Defaults, 3000+500 files (Pillow 9.4, bookworm debs):
~107 KB mean (KB = 1000 bytes), 0.20 MP mean, 4.2 bits/pixel, 75% 4:4:4 among colour files, 376 MB.

OUT_DIR must be empty or absent. --force deletes an earlier corpus there (train/, val/,
corpus_info.json) and refuses if OUT_DIR holds anything else.

Speed: ~1-2 minutes for the 3000+500 default files on 2 idle cores (each worker decodes a source
photo once and cuts all of its windows from it). The printed summary is also saved in corpus_info.json.
"""
import argparse
import io
import json
import math
import os
import random
import shutil
import sys
import time
from multiprocessing import Pool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import debian_photos  # noqa: E402

debian_photos.reexec_with_system_python(("PIL",))

from PIL import Image  # noqa: E402

SHAPES = [  # (weight, kind, params)
    (0.42, "fixed", (500, 375)),
    (0.16, "fixed", (375, 500)),
    (0.10, "fixed", (500, 333)),
    (0.04, "fixed", (333, 500)),
    (0.06, "fixed", (500, 500)),
    (0.08, "w500", (280, 450)),
    (0.12, "small", (300, 400)),
    (0.02, "large", (1.0e6, 2.0e6)),
]
MIN_SCALE = 1.25
MIN_BPP = 6.0
TRIES = 6
WEIGHT_POWER = 1.5  # files per photo ~ (whole-photo bits/pixel) ** WEIGHT_POWER


def pick_shape(rng):
    r, acc = rng.random(), 0.0
    for weight, kind, p in SHAPES:
        acc += weight
        if r < acc:
            break
    if kind == "fixed":
        return p
    if kind == "w500":
        return (500, rng.randint(*p))
    aspect = rng.choice([4 / 3, 4 / 3, 3 / 2, 1.0, 3 / 4, 2 / 3])
    if kind == "small":
        long_side = rng.randint(*p)
        w, h = (long_side, round(long_side / aspect)) if aspect >= 1 else (round(long_side * aspect), long_side)
        return (w, h)
    mp = rng.uniform(*p)  # large
    w = round(math.sqrt(mp * aspect))
    return (w, round(w / aspect))


def encode(img, quality, subsampling):
    buf = io.BytesIO()
    # comment=b"": Pillow >= 9.4 would copy the source photo's COM marker into every cut.
    img.save(buf, "JPEG", quality=quality, subsampling=subsampling, optimize=False, progressive=False,
             comment=b"")
    return buf.getvalue()


class Source:
    """A decoded photograph plus box-reduced copies (2x, 4x, ...). A window much larger than the output
    is taken from a reduced copy (box filter: antialiased) and then LANCZOS-resampled by a factor of
    2-4, as Pillow's reducing_gap does, but the reduction is paid once per photo."""

    def __init__(self, path):
        with Image.open(path) as f:
            self.levels = {1: f.convert("L") if f.mode == "L" else f.convert("RGB")}
        f = 1
        while min(self.levels[f].size) >= 400:
            self.levels[2 * f] = self.levels[f].reduce(2)
            f *= 2
        self.size = self.levels[1].size

    def resize(self, out_w, out_h, x0, y0, ww, wh, filt=Image.LANCZOS, gap=2):
        s = ww / out_w
        f = max(k for k in self.levels if k == 1 or k * gap <= s)
        lvl = self.levels[f]
        box = (x0 / f, y0 / f, min((x0 + ww) / f, lvl.width), min((y0 + wh) / f, lvl.height))
        return lvl.resize((out_w, out_h), filt, box=box)

    def whole_bpp(self):
        """Bits/pixel of the whole photo at ~500 px, q96 4:4:4: how much detail it offers."""
        w, h = self.size
        out = (500, max(1, round(500 * h / w))) if w >= h else (max(1, round(500 * w / h)), 500)
        return 8.0 * len(encode(self.resize(out[0], out[1], 0, 0, w, h), 96, 0)) / (out[0] * out[1])


def cut(src, rng, out_w, out_h, min_bpp, tries):
    """Draw up to `tries` windows (output aspect, 1.25x..max scale, log-uniform; random position),
    score each by the bits/pixel of a half-size BOX-filtered preview encoded at q96 4:4:4, take the
    first scoring >= min_bpp, else the best; return (LANCZOS-resampled image, preview bpp)."""
    sw, sh = src.size
    max_scale = min(sw / out_w, sh / out_h)
    if max_scale < 1.0:  # output larger than the photo: shrink the output, keep its aspect
        out_w, out_h = int(out_w * max_scale), int(out_h * max_scale)
        max_scale = min(sw / out_w, sh / out_h)
    lo = min(MIN_SCALE, max_scale)
    pw, ph = max(8, out_w // 2), max(8, out_h // 2)
    best = None
    for _ in range(tries):
        s = math.exp(rng.uniform(math.log(lo), math.log(max_scale)))
        win = (rng.uniform(0, sw - min(out_w * s, sw)), rng.uniform(0, sh - min(out_h * s, sh)),
               min(out_w * s, sw), min(out_h * s, sh))
        preview = src.resize(pw, ph, *win, filt=Image.BOX, gap=1)
        bpp = 8.0 * len(encode(preview, 96, 0)) / (pw * ph)
        if best is None or bpp > best[0]:
            best = (bpp, win)
        if bpp >= min_bpp:
            break
    return src.resize(out_w, out_h, *best[1]), best[0]


def measure(item):
    return Source(item[1]).whole_bpp()


def work(task):
    """Cut all files assigned to one source photo. Returns a list of per-file stats."""
    photo_name, photo_path, jobs, min_bpp, tries = task
    src = Source(photo_path)
    stats = []
    for out_path, key in jobs:
        rng = random.Random(key)
        w, h = pick_shape(rng)
        img, score = cut(src, rng, w, h, min_bpp, tries)
        quality, subsampling = (96, 0) if rng.random() < 0.75 else (90, 2)
        data = encode(img, quality, subsampling)
        with open(out_path, "wb") as f:
            f.write(data)
        stats.append({"bytes": len(data), "w": img.width, "h": img.height, "grey": img.mode == "L",
                      "q": quality, "s444": subsampling == 0, "reached": score >= min_bpp,
                      "photo": photo_name})
    return stats


def allocate(weights, n, rng):
    """n file slots over photos in proportion to weights (largest remainder), in seeded random order."""
    total = sum(weights)
    exact = [w * n / total for w in weights]
    counts = [int(e) for e in exact]
    for i in sorted(range(len(weights)), key=lambda i: counts[i] - exact[i])[:n - sum(counts)]:
        counts[i] += 1
    slots = [i for i, c in enumerate(counts) for _ in range(c)]
    rng.shuffle(slots)
    return slots


def prepare_out(out, force):
    ours = {"train", "val", "corpus_info.json"}
    if os.path.isdir(out) and os.listdir(out):
        entries = set(os.listdir(out))
        if not force:
            sys.exit("error: %s is not empty; pass --force to replace an earlier corpus there" % out)
        other = sorted(entries - ours)
        if other:
            sys.exit("error: --force only replaces a corpus made by this script, but %s also holds: %s"
                     % (out, ", ".join(other[:10])))
        print("removing the earlier corpus in %s" % out, flush=True)
        for e in entries:
            p = os.path.join(out, e)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    os.makedirs(out, exist_ok=True)


def main():
    ap = argparse.ArgumentParser(description="ImageNet-like stand-in corpus from real photographs",
                                 epilog="See the docstring at the top of this file.")
    ap.add_argument("out_dir")
    ap.add_argument("--files", type=int, default=3000, help="training images (default 3000)")
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--val-per-class", type=int, default=5, help="validation images per class (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--photo-debs", help="folder holding the three .debs (default: apt-get download into the cache)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    ap.add_argument("--min-bpp", type=float, default=MIN_BPP,
                    help="accept the first window whose preview reaches this many bits/pixel (default %g)" % MIN_BPP)
    ap.add_argument("--tries", type=int, default=TRIES, help="windows scored per file (default %d)" % TRIES)
    ap.add_argument("--force", action="store_true", help="replace an earlier corpus in OUT_DIR")
    a = ap.parse_args()
    if a.files < 1 or a.classes < 1 or a.val_per_class < 0 or a.tries < 1 or a.jobs < 1:
        ap.error("--files, --classes, --tries, --jobs must be >= 1, --val-per-class >= 0")

    t0 = time.time()
    prepare_out(a.out_dir, a.force)
    photos = debian_photos.ensure_photos(a.photo_debs)

    files = [("train", i, i % a.classes) for i in range(a.files)]
    files += [("val", a.files + i, i % a.classes) for i in range(a.classes * a.val_per_class)]
    with Pool(min(a.jobs, len(photos))) as pool:
        print("measuring the detail of %d photographs" % len(photos), flush=True)
        detail = pool.map(measure, photos, chunksize=1)
        slots = allocate([d ** WEIGHT_POWER for d in detail], len(files), random.Random("photos:%d" % a.seed))
        per_photo = [[] for _ in photos]
        for c in range(a.classes):
            for split in ("train", "val"):
                os.makedirs(os.path.join(a.out_dir, split, "c%03d" % c), exist_ok=True)
        for slot, (split, idx, cls) in zip(slots, files):
            path = os.path.join(a.out_dir, split, "c%03d" % cls, "%05d.JPEG" % idx)
            per_photo[slot].append((path, "%d:%s:%d" % (a.seed, split, idx)))
        tasks = [(photos[p][0], photos[p][1], jobs, a.min_bpp, a.tries) for p, jobs in enumerate(per_photo) if jobs]
        tasks.sort(key=lambda t: -len(t[2]))  # biggest first: better balance
        print("cutting %d train + %d val files from %d photographs (files per photo %d-%d, in proportion "
              "to the photo's bits/pixel) with %d processes -> %s"
              % (a.files, len(files) - a.files, len(photos), min(len(j) for j in per_photo),
                 max(len(j) for j in per_photo), a.jobs, a.out_dir), flush=True)
        stats = []
        for s in pool.imap_unordered(work, tasks, chunksize=1):
            stats += s

    n = len(stats)
    colour = [s for s in stats if not s["grey"]]
    total_bytes = sum(s["bytes"] for s in stats)
    total_px = sum(s["w"] * s["h"] for s in stats)
    summary = {
        "files": n, "train": a.files, "val": n - a.files, "classes": a.classes,
        "mean_kb": total_bytes / n / 1000.0, "total_mb": total_bytes / 1e6,
        "mean_mp": total_px / n / 1e6, "bits_per_pixel": 8.0 * total_bytes / total_px,
        "share_444": sum(s["s444"] for s in colour) / max(1, len(colour)),
        "share_grey": (n - len(colour)) / n,
        "share_500x375_or_375x500": sum((s["w"], s["h"]) in ((500, 375), (375, 500)) for s in stats) / n,
        "share_over_1mp": sum(s["w"] * s["h"] >= 1e6 for s in stats) / n,
        "share_below_min_bpp": sum(not s["reached"] for s in stats) / n,
        "seconds": round(time.time() - t0, 1),
    }
    info = {"generator": "bench/make_photo_corpus.py", "seed": a.seed, "min_bpp": a.min_bpp, "tries": a.tries,
            "pillow": Image.__version__, "packages": debian_photos.EXPECTED_VERSIONS,
            "photos": {p[0]: {"whole_bpp": round(d, 2), "files": len(j)}
                       for p, d, j in zip(photos, detail, per_photo)},
            "summary": summary}
    with open(os.path.join(a.out_dir, "corpus_info.json"), "w") as f:
        json.dump(info, f, indent=1)
    print("%d files (%d train, %d val, %d classes), %.1f MB: mean %.1f KB, mean %.3f MP, %.2f bits/pixel, "
          "4:4:4 %.0f%% of colour files, greyscale %.1f%%, 500x375/375x500 %.0f%%, >=1 MP %.1f%%, "
          "%.0f%% of windows below %.1f preview bits/pixel, %.0f s"
          % (n, a.files, n - a.files, a.classes, summary["total_mb"], summary["mean_kb"], summary["mean_mp"],
             summary["bits_per_pixel"], 100 * summary["share_444"], 100 * summary["share_grey"],
             100 * summary["share_500x375_or_375x500"], 100 * summary["share_over_1mp"],
             100 * summary["share_below_min_bpp"], a.min_bpp, summary["seconds"]))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
