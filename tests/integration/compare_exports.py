#!/usr/bin/env python3
"""Compares the weights of two `jepa export` files element by element, without torch: every
tensor of encoder, predictor and target_encoder must satisfy |a - b| <= atol + rtol * |b|.

Usage: compare_exports.py A.pt B.pt [--rtol R] [--atol A]
Exit status 0 when they agree, 1 (naming the worst tensor) when not.
"""
import argparse
import os
import sys
import zipfile
from array import array

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_export import TorchUnpickler  # noqa: E402


def load(path):
    with zipfile.ZipFile(path) as z:
        pkl = [n for n in z.namelist() if n.endswith("data.pkl")][0]
        root = pkl[: -len("data.pkl")]
        obj = TorchUnpickler(z.open(pkl)).load()
        out = {}
        for part in ("encoder", "predictor", "target_encoder"):
            for name, t in obj[part].items():
                values = array("f")
                values.frombytes(z.read(f"{root}data/{t.storage.key}"))
                count = 1
                for s in t.size:
                    count *= s
                out[f"{part}/{name}"] = values[t.offset:t.offset + count]
        return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--rtol", type=float, default=1e-4)
    p.add_argument("--atol", type=float, default=1e-5)
    args = p.parse_args()
    a, b = load(args.a), load(args.b)
    if sorted(a) != sorted(b):
        print(f"different tensors: {sorted(set(a) ^ set(b))[:5]}")
        return 1
    worst, worst_name = 0.0, ""
    for name in a:
        if len(a[name]) != len(b[name]):
            print(f"{name}: {len(a[name])} values against {len(b[name])}")
            return 1
        for x, y in zip(a[name], b[name]):
            excess = abs(x - y) - (args.atol + args.rtol * abs(y))
            if excess > worst:
                worst, worst_name = excess, name
    if worst > 0:
        print(f"weights differ: {worst_name} exceeds the tolerance by {worst:.3g}")
        return 1
    print(f"ok: {len(a)} tensors agree (rtol {args.rtol}, atol {args.atol})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
