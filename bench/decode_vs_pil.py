#!/usr/bin/python3
"""Decode + timm eval preprocessing on ONE core: ToMeEngine (`tome bench decode --stdin`) against PIL, interleaved.

Every engine reads all files into memory first, then each round times one pass over all files per engine, rotating
which goes first. Reported: images/s per engine (median over rounds), and each engine's rate over the first engine's,
paired per round (median), by wall clock and by process CPU time (the steadier measure when other work shares the
core). All processes are pinned to the same core. With --tome given twice and --no-pil it compares two builds.

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

import benchenv

benchenv.require("numpy", "PIL")
import numpy as np  # noqa: E402
from PIL import Image, features  # noqa: E402

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


class Tome:
    """A `tome bench decode --stdin` process: one timed pass per request."""

    def __init__(self, command, args):
        cmd = command + ["bench", "decode", "--images", args.images, "--model", args.model, "--stdin"]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        if args.decode_only:
            cmd += ["--decode-only"]
        # The child inherits the one-core affinity.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        if self.proc.stdout.readline().strip() != "ready":
            sys.exit(f"{' '.join(cmd)} did not start")

    def __call__(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        wall, cpu = self.proc.stdout.readline().split()
        return float(wall), float(cpu)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def pil_decode_pass(blobs):
    """Decoding alone: whole pictures to RGB."""
    start, cpu = time.perf_counter(), time.process_time()
    for blob in blobs:
        Image.open(io.BytesIO(blob)).convert("RGB")
    return time.perf_counter() - start, time.process_time() - cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True)
    ap.add_argument("--model", required=True, help="model folder with timm's config.json")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--core", type=int, default=0, help="the one CPU all engines run on")
    ap.add_argument("--tome", action="append", default=None,
                    help="command that runs tome (default: dotnet <repo>/src/ToMeEngine.Cli/bin/Release/net10.0/tome.dll); "
                         "repeat to compare builds, each against the first engine")
    ap.add_argument("--no-pil", action="store_true", help="time only the tome builds (A/B of two versions)")
    ap.add_argument("--decode-only", action="store_true",
                    help="time decoding alone: PIL's Image.open + convert('RGB') against `tome bench decode --decode-only`")
    ap.add_argument("--json", default=None, help="also write the measurements to this file")
    args = ap.parse_args()

    os.sched_setaffinity(0, {args.core})
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commands = args.tome or [f"dotnet {os.path.join(repo, 'src/ToMeEngine.Cli/bin/Release/net10.0/tome.dll')}"]
    files = sorted(f for f in glob.glob(os.path.join(args.images, "*")) if f.lower().endswith(EXTENSIONS))
    if args.limit:
        files = files[: args.limit]
    blobs = [open(f, "rb").read() for f in files]
    img, scale, mean, std = preprocessing(args.model)

    if args.decode_only:
        pil = (f"PIL {Image.__version__} decode", lambda: pil_decode_pass(blobs))
    else:
        pil = (f"PIL {Image.__version__} + numpy", lambda: pil_pass(blobs, img, scale, mean, std))
    engines = [] if args.no_pil else [pil]
    tomes = [Tome(c.split(), args) for c in commands]
    engines += [("ToMeEngine" if len(tomes) == 1 else f"ToMeEngine: {c}", t) for c, t in zip(commands, tomes)]
    if len(engines) < 2:
        sys.exit("nothing to compare: give --tome twice with --no-pil")
    for _, run in engines:
        run()  # warm-up (tome also warmed up before 'ready')
    times = [[] for _ in engines]
    n = len(blobs)
    for r in range(args.rounds):
        # Rotate who goes first, so no engine always runs right after the same neighbour.
        order = [(r + i) % len(engines) for i in range(len(engines))]
        for i in order:
            times[i].append(engines[i][1]())
        print(f"round {r + 1}: " + ", ".join(f"{name} {n / t[-1][0]:.1f} images/s ({n / t[-1][1]:.1f} per CPU s)"
                                             for (name, _), t in zip(engines, times)), file=sys.stderr)
    for t in tomes:
        t.close()

    summary = {}
    what = "decoding to RGB" if args.decode_only else f"decode + preprocessing, {scale} -> {img}"
    print(f"{n} files, {what}, core {args.core}, {args.rounds} interleaved rounds (medians)")
    print(f"| engine | images/s (wall clock) | images/s (CPU time) | / {engines[0][0]}, paired per round (wall) | (CPU) |")
    print("|---|---:|---:|---:|---:|")
    for (name, _), t in zip(engines, times):
        rates = [n / statistics.median(x[k] for x in t) for k in (0, 1)]
        ratios = [statistics.median(b[k] / x[k] for b, x in zip(times[0], t)) for k in (0, 1)]
        summary[name] = {"images_per_s_wall": rates[0], "images_per_s_cpu": rates[1],
                         "ratio_wall": ratios[0], "ratio_cpu": ratios[1], "seconds_wall_cpu": t}
        print(f"| {name} | {rates[0]:.1f} | {rates[1]:.1f} | {ratios[0]:.2f} | {ratios[1]:.2f} |")
    if not args.no_pil:
        print(f"PIL {Image.__version__} with libjpeg-turbo (libjpeg API {features.version('jpg')}), numpy {np.__version__}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"files": n, "scale_size": scale, "img_size": img, "core": args.core, "command": sys.argv,
                       "engines": summary}, f, indent=1)


if __name__ == "__main__":
    main()
