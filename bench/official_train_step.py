#!/usr/bin/env python3
"""Time the official I-JEPA train step (facebookresearch/ijepa) on this CPU, or on a GPU in bf16.

Usage: python3 bench/official_train_step.py OFFICIAL_CHECKOUT [--pred-emb-dim 384]
           [--pred-depth 6] [--warmup 2] [--steps 3] [--threads 2] [--batch 16]
           [--model vit_tiny] [--patch-size 16] [--device cpu|cuda] [--bf16] [--peak-tflops 989.4]

OFFICIAL_CHECKOUT is a directory holding the upstream `src/` package (models/vision_transformer.py,
masks/multiblock.py, masks/utils.py, utils/tensors.py, utils/schedulers.py, utils/logging.py,
helper.py). Nothing of it is vendored here: the script imports it, so what is timed is upstream's
own model, masks and optimizer, driven the way src/train.py drives them. For the GPU check it is
carried in the git-ignored .official/ (docs/gpu-check.md). On the CPU: fp32, no AMP, with Debian's
python3-torch (1.13.1, the same libtorch and OpenBLAS as the C++ build), i.e. /usr/bin/python3.

--device cuda --bf16 is upstream's use_bfloat16 branch: torch.cuda.amp.autocast(dtype=bfloat16)
over the target forward, the context forward and the loss, and its GradScaler around backward and
the optimizer step. GPU steps are timed with CUDA events (recorded around the step on the current
stream, read after torch.cuda.synchronize()), so the time is the GPU's, as train_step_bench's
synchronised wall clock; peak memory is torch.cuda.max_memory_allocated(), as its peak_gpu_MiB.
ViT-H/14 as bench/vit_huge_224.toml: --model vit_huge --patch-size 14 --pred-depth 12 --batch 128.

Counterpart of bench/train_step_bench.cpp: by default ViT-tiny/16 at 224, batch 16, multi-block masks
with upstream's ImageNet settings, synthetic images. The mask collator's time is excluded from the
step (upstream runs it in DataLoader workers) but reported separately.
"""
import argparse
import contextlib
import copy
import logging
import resource
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("official", help="directory containing upstream's src/ package")
    ap.add_argument("--pred-emb-dim", type=int, default=384)  # upstream default (init_model)
    ap.add_argument("--pred-depth", type=int, default=6)      # upstream default (init_model)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--model", default="vit_tiny", help="upstream's model_name (vit_tiny ... vit_giant)")
    ap.add_argument("--patch-size", type=int, default=16)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--bf16", action="store_true", help="upstream's use_bfloat16 (CUDA only)")
    ap.add_argument("--peak-tflops", type=float, default=989.4,
                    help="the GPU's dense bf16 peak, for the MFU (default: H100/H200 SXM)")
    args = ap.parse_args()
    if args.bf16 and args.device != "cuda":
        ap.error("--bf16 is upstream's CUDA path: use it with --device cuda")

    sys.path.insert(0, args.official)
    import torch
    import torch.nn.functional as F
    from src.helper import init_model, init_opt
    from src.masks.multiblock import MaskCollator
    from src.masks.utils import apply_masks
    from src.utils.tensors import repeat_interleave_batch
    from src.utils.logging import grad_logger

    logging.getLogger().setLevel(logging.WARNING)  # init_model logs the whole encoder repr
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # as src/train.py
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("official_train_step: --device cuda, but torch sees no CUDA device")

    encoder, predictor = init_model(device=device, patch_size=args.patch_size, model_name=args.model,
                                    crop_size=224, pred_depth=args.pred_depth, pred_emb_dim=args.pred_emb_dim)
    target_encoder = copy.deepcopy(encoder)
    for p in target_encoder.parameters():
        p.requires_grad = False

    # Upstream's mask config (configs/in1k_vith14_ep300.yaml), at --patch-size.
    collator = MaskCollator(input_size=224, patch_size=args.patch_size, enc_mask_scale=(0.85, 1.0),
                            pred_mask_scale=(0.15, 0.2), aspect_ratio=(0.75, 1.5), nenc=1, npred=4,
                            min_keep=10, allow_overlap=False)

    # Optimization values of the same config; they do not change the step's cost.
    ipe, epochs = 1000, 300
    optimizer, _, scheduler, wd_scheduler = init_opt(
        encoder=encoder, predictor=predictor, wd=0.04, final_wd=0.4, start_lr=0.0002, ref_lr=0.001,
        final_lr=1e-6, iterations_per_epoch=ipe, warmup=40, num_epochs=epochs, ipe_scale=1.0)
    ema = (0.996, 1.0)
    momentum_scheduler = (ema[0] + i * (ema[1] - ema[0]) / (ipe * epochs) for i in range(ipe * epochs + 1))

    # A dataset sample is (image, label); the collator stacks them and samples the masks.
    samples = [(torch.randn(3, 224, 224), 0) for _ in range(args.batch)]

    # Upstream makes a GradScaler when use_bfloat16 (src/helper.py init_opt) and steps through it.
    scaler = torch.cuda.amp.GradScaler() if args.bf16 else None

    def train_step(imgs, masks_enc, masks_pred):
        # Body of train_step() in upstream src/train.py: its fp32 branch, or with --bf16 its
        # use_bfloat16 branch (autocast over both forwards and the loss, the scaler after).
        scheduler.step()
        wd_scheduler.step()
        # No autocast object at all without --bf16: torch 1.13's checks bf16 support on CUDA even
        # when disabled, which fails on a CPU-only build.
        amp = torch.autocast("cuda", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
        with amp:
            with torch.no_grad():
                h = target_encoder(imgs)
                h = F.layer_norm(h, (h.size(-1),))
                B = len(h)
                h = apply_masks(h, masks_pred)
                h = repeat_interleave_batch(h, B, repeat=len(masks_enc))
            z = encoder(imgs, masks_enc)
            z = predictor(z, masks_enc, masks_pred)
            loss = F.smooth_l1_loss(z, h)  # AllReduce is the identity on one process
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        grad_logger(encoder.named_parameters())
        optimizer.zero_grad()
        with torch.no_grad():
            m = next(momentum_scheduler)
            for param_q, param_k in zip(encoder.parameters(), target_encoder.parameters()):
                param_k.data.mul_(m).add_((1. - m) * param_q.detach().data)
        return float(loss)

    # The shapes for the FLOP count, read from upstream's modules (VisionTransformer's embed_dim,
    # blocks, patch_embed.num_patches; the MLP width from the first block's fc1, as
    # train_step_bench reads its own).
    d = float(encoder.embed_dim)
    depth = len(encoder.blocks)
    n = float(encoder.patch_embed.num_patches)
    h_enc = float(encoder.blocks[0].mlp.fc1.out_features)
    h_pred = float(predictor.predictor_blocks[0].mlp.fc1.out_features)
    dp = float(args.pred_emb_dim)

    def step_gflop(nc, nt, B=args.batch):
        # Matmul FLOPs, same count as bench/train_step_bench.cpp (its upstream_GFLOP_per_step: the
        # predictor's last block over all tokens): backward ~ 2x forward.
        def block(n, d, h):
            return 2 * n * d * 4 * d + 4 * n * n * d + 4 * n * d * h
        patch = 2 * n * 3 * args.patch_size * args.patch_size * d
        target = B * (patch + depth * block(n, d, h_enc))
        context = B * (patch + depth * block(nc, d, h_enc))
        pred = B * 2 * nc * d * dp + 4 * B * (args.pred_depth * block(nc + nt, dp, h_pred) + 2 * nt * dp * d)
        return (target + 3 * (context + pred)) / 1e9

    if cuda:
        # Images on the GPU before timing, as train_step_bench's synthetic batch: no H2D in the step.
        samples = [(img.to(device), label) for img, label in samples]
        torch.cuda.reset_peak_memory_stats(device)

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}, "
          f"predictor emb {args.pred_emb_dim} depth {args.pred_depth}", flush=True)
    step_ms, coll_ms, gflop, cpu_util = [], [], [], []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        (imgs, _), masks_enc, masks_pred = collator(samples)
        # CPU seconds per wall second over the step: ~threads when the cores were ours alone,
        # lower when other processes took them (the timing is then not meaningful).
        if cuda:
            masks_enc = [m.to(device) for m in masks_enc]
            masks_pred = [m.to(device) for m in masks_pred]
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        t1, c1 = time.perf_counter(), time.process_time()
        loss = train_step(imgs, masks_enc, masks_pred)  # float(loss) waits for the forward only
        if cuda:
            end.record()
            torch.cuda.synchronize()
        t2, c2 = time.perf_counter(), time.process_time()
        ms = start.elapsed_time(end) if cuda else (t2 - t1) * 1e3
        timed = i >= args.warmup
        if timed:
            coll_ms.append((t1 - t0) * 1e3)
            step_ms.append(ms)
            cpu_util.append((c2 - c1) / (t2 - t1))
            gflop.append(step_gflop(masks_enc[0].shape[1], masks_pred[0].shape[1]))
        print(f"{'step' if timed else 'warm-up'} {i}: {ms:.0f} ms "
              f"(context {masks_enc[0].shape[1]}, target 4x{masks_pred[0].shape[1]} tokens, "
              f"collator {(t1 - t0) * 1e3:.1f} ms, cpu/wall {(c2 - c1) / (t2 - t1):.2f}, loss {loss:.4f})", flush=True)

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is KiB on Linux
    gpu = ""
    if cuda:
        tflops = sum(gflop) / sum(step_ms)  # GFLOP per ms = TFLOP/s
        gpu = (f"device={torch.cuda.get_device_name(device).replace(' ', '_')} bf16={int(args.bf16)} "
               f"images_per_s={args.batch * len(step_ms) / sum(step_ms) * 1e3:.0f} TFLOPs={tflops:.1f} "
               f"MFU_percent={tflops / args.peak_tflops * 100:.1f} "
               f"peak_gpu_MiB={torch.cuda.max_memory_allocated(device) / 2**20:.0f} ")
    print(f"RESULT {gpu}model={args.model} patch={args.patch_size} batch={args.batch} "
          f"pred_emb_dim={args.pred_emb_dim} pred_depth={args.pred_depth} "
          f"median_ms={statistics.median(step_ms):.0f} min_ms={min(step_ms):.0f} max_ms={max(step_ms):.0f} "
          f"collator_median_ms={statistics.median(coll_ms):.1f} peak_rss_MiB={peak_mib:.0f} "
          f"GFLOP_per_step={statistics.mean(gflop):.0f} GFLOPs={sum(gflop) / sum(step_ms) * 1e3:.1f} "
          f"cpu_per_wall={min(cpu_util):.2f}-{max(cpu_util):.2f}", flush=True)


if __name__ == "__main__":
    main()
