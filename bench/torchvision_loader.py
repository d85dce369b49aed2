#!/usr/bin/env python3
"""Throughput of the loader users would otherwise pick: torchvision ImageFolder + DataLoader with the
official I-JEPA transforms, no model.

    python3 bench/torchvision_loader.py ROOT --workers N [--batch 128] [--size 224] [--images 2000]
                                        [--warmup-batches 2] [--threads 1] [--seed 0]

ROOT is an image folder such as one made by bench/make_photo_corpus.py; ROOT/train is read.

Pipeline (facebookresearch/ijepa src/transforms.py + src/datasets/imagenet1k.py, see
shared/DATA_PIPELINE_NOTES.md section 1):
    torchvision.datasets.ImageFolder(ROOT/train)         PIL decode: Image.open + convert('RGB')
    RandomResizedCrop(size, scale=(0.3, 1.0))            default ratio (3/4, 4/3), bilinear, antialias
    ToTensor() + Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    DataLoader(batch_size, shuffle=True, num_workers=N, drop_last=True, persistent_workers=False)
      default collate and prefetch_factor (2 batches per worker), no pinning (no GPU involved).
torch.set_num_threads(--threads) in the main process and in every worker (worker_init_fn), so with
the default one worker is one core. --workers 0 decodes in the main process.

Measurement: wall clock from the moment the --warmup-batches-th batch arrives (worker start-up and
the first batches are excluded) until at least --images more images have arrived; epochs are cycled
if the folder is smaller, and since workers are not persistent (as in I-JEPA) each new epoch pays
the worker restart inside the measured time. Prints a human line, then a final JSON line:
    {"tool": "torchvision", "workers": N, "images": ..., "seconds": ..., "images_per_s": ...,
     "images_per_s_per_worker": ..., "batch": ..., "size": ..., "threads": ..., "epochs_started": ...,
     "torch": "...", "torchvision": "...", "pillow": "..."}
Timings are only meaningful on an otherwise idle machine (check `uptime`); N workers need N free
cores plus a little for the main process.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import debian_photos  # noqa: E402

debian_photos.reexec_with_system_python(("PIL", "torch", "torchvision"))

import PIL  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from torchvision import transforms  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def make_transform(size):
    rrc = dict(scale=(0.3, 1.0))
    try:  # torchvision >= 0.13 has `antialias` (PIL images are always antialiased anyway)
        transforms.RandomResizedCrop(size, antialias=True)
        rrc["antialias"] = True
    except TypeError:
        pass
    return transforms.Compose([transforms.RandomResizedCrop(size, **rrc), transforms.ToTensor(),
                               transforms.Normalize(MEAN, STD)])


class _ThreadInit:
    def __init__(self, threads):
        self.threads = threads

    def __call__(self, worker_id):
        torch.set_num_threads(self.threads)


def main():
    ap = argparse.ArgumentParser(description="torchvision ImageFolder + DataLoader throughput, I-JEPA transforms",
                                 epilog="See the docstring at the top of this file.")
    ap.add_argument("root", help="image folder root; ROOT/train is read")
    ap.add_argument("--workers", type=int, required=True, help="DataLoader num_workers (0: main process)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--images", type=int, default=2000, help="images to time after the warm-up (default 2000)")
    ap.add_argument("--warmup-batches", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.workers < 0 or a.batch < 1 or a.size < 1 or a.images < 1 or a.warmup_batches < 0 or a.threads < 1:
        ap.error("invalid argument value")

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train = os.path.join(a.root, "train")
    if not os.path.isdir(train):
        sys.exit("error: %s is not a folder (expected ROOT/train/<class>/<image>)" % train)
    dataset = torchvision.datasets.ImageFolder(train, transform=make_transform(a.size))
    if len(dataset) < a.batch:
        sys.exit("error: %s has %d images, fewer than one batch of %d" % (train, len(dataset), a.batch))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=a.batch, shuffle=True, num_workers=a.workers, drop_last=True,
        persistent_workers=False, worker_init_fn=_ThreadInit(a.threads) if a.workers > 0 else None)
    print("ImageFolder %s: %d images, %d classes; batch %d, crop %d, %d workers, %d thread(s) each"
          % (train, len(dataset), len(dataset.classes), a.batch, a.size, a.workers, a.threads), flush=True)

    t_start = time.perf_counter()
    batches = timed_images = epochs = 0
    t0 = None if a.warmup_batches > 0 else time.perf_counter()
    while t0 is None or timed_images < a.images:
        epochs += 1
        for images, labels in loader:
            assert images.shape == (a.batch, 3, a.size, a.size) and images.dtype == torch.float32
            batches += 1
            if t0 is None:
                if batches == a.warmup_batches:
                    t0 = time.perf_counter()
                continue
            timed_images += images.shape[0]
            if timed_images >= a.images:
                break
    seconds = time.perf_counter() - t0
    rate = timed_images / seconds
    per_worker = rate / max(1, a.workers)
    print("torchvision %s, %d workers: %.1f images/s (%.1f per worker) over %d images in %.2f s, after %d "
          "warm-up batches (%.2f s incl. start-up); %d epoch(s) started"
          % (torchvision.__version__, a.workers, rate, per_worker, timed_images, seconds, a.warmup_batches,
             t0 - t_start, epochs), flush=True)
    print(json.dumps({
        "tool": "torchvision", "workers": a.workers, "images": timed_images, "seconds": round(seconds, 3),
        "images_per_s": round(rate, 1), "images_per_s_per_worker": round(per_worker, 1), "batch": a.batch,
        "size": a.size, "threads": a.threads, "warmup_batches": a.warmup_batches, "epochs_started": epochs,
        "dataset_images": len(dataset), "torch": torch.__version__, "torchvision": torchvision.__version__,
        "pillow": PIL.__version__}))


if __name__ == "__main__":
    main()
