"""Top-1/top-5 of ToMeEngine and ONNX Runtime, float32 and int8, on the labelled ImageNet photos in ../shared.

    /usr/bin/python3 bench/accuracy_ort.py [--r 0,13] [--batch 50] [--threads 2] [--limit N] [--out bench/results/FILE.md]
        [--tome PATH/tome.dll] [--ortbench PATH/ortbench.dll] [--no-build]

The real ViT-Ti (../shared/models) classifies ../shared/imagenet-samples (labels.csv) in five configurations at each
r: ToMeEngine fp32 and int8 (`tome eval`), ONNX Runtime fp32 and int8 with per-tensor and per-column weight scales
(bench/ort/OrtBench --eval on the graphs bench/compare_ort.py exports and quantizes; ToMe r > 0 is timm + the official
ToMe traced as a static graph at --batch). Both engines classify the same tensors: OrtBench decodes and preprocesses
with ToMeEngine's own code. "Agrees with fp32" is the share of images whose top-1 equals the same engine's float32 top-1.
"""
import argparse
import csv
import datetime
import os
import sys

import benchenv

benchenv.require("numpy")
import numpy as np  # noqa: E402

import compare_ort as co  # noqa: E402

SAMPLES = os.path.join(co.SHARED, "imagenet-samples")


def tome_eval(args, r, precision):
    """(top-1 index, top-5 indices) per image, in labels.csv order."""
    out = os.path.join(co.MODELS, f"eval.tome.r{r}.{precision}.csv")
    cmd = ["dotnet", co.TOME, "eval", "--model", co.REAL_VIT_TI, "--images", SAMPLES, "--batch", str(args.batch),
           "--r", str(r), "--threads", str(args.threads), "--output", out, *co.precision_args(precision)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    co.run(cmd)
    with open(out) as f:
        rows = list(csv.DictReader(f))
    return np.array([[int(row[f"pred{i}"]) for i in range(1, 6)] for row in rows])


def ort_eval(args, r, quant, count):
    onnx_path = co.onnx_model(co.REAL_VIT_TI, "vit_tiny_real", r, args.batch, quant)
    out = os.path.join(co.MODELS, f"eval.{os.path.basename(onnx_path)}.f32")
    folder = SAMPLES
    if args.limit:
        folder = os.path.join(co.MODELS, "eval.limited")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(SAMPLES, "labels.csv")) as src, open(os.path.join(folder, "labels.csv"), "w") as dst:
            lines = src.read().splitlines()[: args.limit + 1]
            dst.write("\n".join(os.path.join(SAMPLES, line) if i else line for i, line in enumerate(lines)) + "\n")
    co.run(["dotnet", co.ORTBENCH, "--onnx", onnx_path, "--batch", str(args.batch), "--threads", str(args.threads),
            "--eval", folder, "--model", co.REAL_VIT_TI, "--logits", out])
    logits = np.fromfile(out, dtype="<f4").reshape(count, -1)
    return np.argsort(-logits, axis=1, kind="stable")[:, :5]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--r", default="0,13", help="merge schedules (constant r), comma-separated")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="only the first N images (0 = all)")
    ap.add_argument("--out", help="also write the table as markdown to this file")
    ap.add_argument("--tome", help="a tome.dll to run instead of this checkout's Release build")
    ap.add_argument("--ortbench", help="an ortbench.dll to run instead of this checkout's Release build")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not (os.path.exists(co.REAL_VIT_TI) and os.path.exists(os.path.join(SAMPLES, "labels.csv"))):
        sys.exit(f"needs {co.REAL_VIT_TI} and {SAMPLES}")
    if args.tome:
        co.TOME = os.path.abspath(args.tome)
    elif not args.no_build:
        print("building tome and ortbench ...", flush=True)
        co.run(["dotnet", "build", "src/ToMeEngine.Cli", "-c", "Release", "-v", "q", "-nologo"])
    if args.ortbench:
        co.ORTBENCH = os.path.abspath(args.ortbench)
    elif not args.no_build:
        co.run(["dotnet", "build", "bench/ort/OrtBench", "-c", "Release", "-v", "q", "-nologo"])
    os.makedirs(co.MODELS, exist_ok=True)
    with open(os.path.join(SAMPLES, "labels.csv")) as f:
        labels = np.array([int(row["class_index"]) for row in csv.DictReader(f)])
    if args.limit:
        labels = labels[: args.limit]
    commit = co.commit_label(bool(args.tome))
    started = datetime.datetime.now()

    configs = [("ToMeEngine", "fp32", lambda r: tome_eval(args, r, "fp32")),
               ("ToMeEngine", "int8 (per-channel weights, per-token activations)", lambda r: tome_eval(args, r, "int8")),
               ("ONNX Runtime", "fp32", lambda r: ort_eval(args, r, None, len(labels))),
               ("ONNX Runtime", "int8 (per-tensor weights, DynamicQuantizeMatMul)", lambda r: ort_eval(args, r, "per-tensor", len(labels))),
               ("ONNX Runtime", "int8 (per-column weights)", lambda r: ort_eval(args, r, "per-column", len(labels)))]
    rs = [int(r) for r in args.r.split(",")]
    lines = ["| engine | precision | r | top-1 % | top-5 % | top-1 agrees with the engine's fp32 |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rs:
        fp32_top1 = {}
        for engine, precision, evaluate in configs:
            preds = evaluate(r)
            top1 = 100 * float((preds[:, 0] == labels).mean())
            top5 = 100 * float((preds == labels[:, None]).any(1).mean())
            agree = ""
            if precision == "fp32":
                fp32_top1[engine] = preds[:, 0]
            else:
                agree = f"{100 * float((preds[:, 0] == fp32_top1[engine]).mean()):.1f}%"
            line = f"| {engine} | {precision} | {r} | {top1:.1f} | {top5:.1f} | {agree} |"
            print(line, flush=True)
            lines.append(line)
    command = "/usr/bin/python3 bench/accuracy_ort.py " + " ".join(sys.argv[1:])
    header = [f"* ViT-Ti (`{os.path.basename(co.REAL_VIT_TI)}`) on the {len(labels)} photos of ../shared/imagenet-samples; "
              f"batch {args.batch}, {args.threads} threads.",
              f"* Date: {started:%Y-%m-%d %H:%M}; commit `{commit}`; machine: {co.machine()}.",
              f"* Command: `{command}`"]
    co.write_report("\n".join(header + [""] + lines) + "\n", args.out)


if __name__ == "__main__":
    main()
