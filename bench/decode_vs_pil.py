#!/usr/bin/python3
"""Decode + timm eval preprocessing on ONE core: ToMeEngine (`tome bench decode --stdin`) against PIL, interleaved.

Both sides read every file into memory first, then each round times one pass over all files with PIL and one with
ToMeEngine, alternating which goes first. Reported: images/s per engine (median over rounds), and the ratio
ToMeEngine / PIL paired per round (median), by wall clock and by process CPU time (the steadier measure when other
work shares the core). Both processes are pinned to the same core.

PIL's side is timm's eval transform written out with PIL + numpy, as torchvision 0.14 runs it:
  Image.open + convert('RGB'); Resize(scale_size) on the shorter side (the longer side int(size * long / short)),
  bicubic; CenterCrop(img_size) with int(round((size - crop) / 2.0)); ToTensor (HWC uint8 -> CHW float32 / 255);
  Normalize ((x - mean) / std). Sizes, mean and std come from the model's config.json (pretrained_cfg).

Needs Debian's python3-pil (libjpeg-turbo) and python3-numpy: apt-get install python3-pil python3-numpy.

  bench/decode_vs_pil.py --images ../shared/imagenet-samples \
      --model ../shared/models/vit_tiny_patch16_224.augreg_in21k_ft_in1k --rounds 15 --core 0
"""
import argparse
import glob
import io
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from PIL import Image, features

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pnm")


def preprocessing(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)["pretrained_cfg"]
    img = cfg["input_size"][-1]
    scale = math.floor(img / cfg["crop_pct"])
    assert cfg["interpolation"] == "bicubic" and cfg.get("crop_mode", "center") == "center", cfg
    mean = np.array(cfg["mean"], dtype=np.float32).reshape(3, 1, 1)
    std = np.array(cfg["std"], dtype=np.float32).reshape(3, 1, 1)
    return img, scale, mean, std


def pil_pass(blobs, img, scale, mean, std):
    """Wall-clock and process CPU seconds of one pass."""
    start, cpu = time.perf_counter(), time.process_time()
    for blob in blobs:
        im = Image.open(io.BytesIO(blob)).convert("RGB")
        w, h = im.size
        # torchvision _compute_resized_output_size for an int size.
        size = (scale, int(scale * h / w)) if w <= h else (int(scale * w / h), scale)
        im = im.resize(size, Image.BICUBIC)
        w, h = im.size
        left, top = int(round((w - img) / 2.0)), int(round((h - img) / 2.0))
        im = im.crop((left, top, left + img, top + img))
        x = np.ascontiguousarray(np.asarray(im).transpose(2, 0, 1), dtype=np.float32) / np.float32(255)
        x = (x - mean) / std
    return time.perf_counter() - start, time.process_time() - cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True)
    ap.add_argument("--model", required=True, help="model folder with timm's config.json")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--core", type=int, default=0, help="the one CPU both engines run on")
    ap.add_argument("--tome", default=None, help="command that runs tome (default: dotnet <repo>/src/ToMeEngine.Cli/bin/Release/net10.0/tome.dll)")
    ap.add_argument("--json", default=None, help="also write the measurements to this file")
    args = ap.parse_args()

    os.sched_setaffinity(0, {args.core})
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tome = args.tome.split() if args.tome else ["dotnet", os.path.join(repo, "src/ToMeEngine.Cli/bin/Release/net10.0/tome.dll")]
    files = sorted(f for f in glob.glob(os.path.join(args.images, "*")) if f.lower().endswith(EXTENSIONS))
    if args.limit:
        files = files[: args.limit]
    blobs = [open(f, "rb").read() for f in files]
    img, scale, mean, std = preprocessing(args.model)

    cmd = tome + ["bench", "decode", "--images", args.images, "--model", args.model, "--stdin"]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    # The child inherits the one-core affinity.
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    if proc.stdout.readline().strip() != "ready":
        sys.exit("tome bench decode --stdin did not start")

    def tome_pass():
        proc.stdin.write("go\n")
        proc.stdin.flush()
        wall, cpu = proc.stdout.readline().split()
        return float(wall), float(cpu)

    pil_pass(blobs, img, scale, mean, std)  # warm-up (tome warmed up before 'ready')
    pil, ours = [], []
    for r in range(args.rounds):
        if r % 2 == 0:
            pil.append(pil_pass(blobs, img, scale, mean, std))
            ours.append(tome_pass())
        else:
            ours.append(tome_pass())
            pil.append(pil_pass(blobs, img, scale, mean, std))
        n = len(blobs)
        print(f"round {r + 1}: PIL {n / pil[-1][0]:.1f} images/s ({n / pil[-1][1]:.1f} per CPU s), "
              f"ToMeEngine {n / ours[-1][0]:.1f} images/s ({n / ours[-1][1]:.1f} per CPU s)", file=sys.stderr)
    proc.stdin.close()
    proc.wait()

    n = len(blobs)
    rows = {}
    for k, name in ((0, "wall clock"), (1, "CPU time")):
        rows[name] = (n / statistics.median(p[k] for p in pil), n / statistics.median(o[k] for o in ours),
                      statistics.median(p[k] / o[k] for p, o in zip(pil, ours)))
    print(f"{n} files, {scale} -> {img}, core {args.core}, {args.rounds} interleaved rounds (medians)")
    print("| clock | PIL images/s | ToMeEngine images/s | ToMeEngine / PIL (paired per round) |")
    print("|---|---:|---:|---:|")
    for name, (p, o, ratio) in rows.items():
        print(f"| {name} | {p:.1f} | {o:.1f} | {ratio:.2f} |")
    print(f"PIL {Image.__version__} with libjpeg-turbo (libjpeg API {features.version('jpg')}), numpy {np.__version__}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"files": n, "scale_size": scale, "img_size": img, "core": args.core, "command": sys.argv,
                       "pil_seconds_wall_cpu": pil, "tome_seconds_wall_cpu": ours,
                       "summary": {k: {"pil_images_per_s": v[0], "tome_images_per_s": v[1], "ratio_paired_median": v[2]}
                                   for k, v in rows.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
