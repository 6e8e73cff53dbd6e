"""ToMeEngine against ONNX Runtime on this CPU: the same ViTs, the same weights, the same batch and thread count.

    /usr/bin/python3 bench/compare_ort.py [--cases vit_tiny:0,vit_tiny:13,vit_small:0,vit_base:0] [--batches 16,1]
        [--threads 2] [--rounds 5] [--runs 8] [--warmup 2] [--precision fp32|int8] [--ort-quant per-tensor|per-column]
        [--out bench/results/FILE.md] [--tome PATH/tome.dll] [--no-build] [--no-check]

The engines run one after the other in rounds (ToMeEngine, ONNX Runtime, ToMeEngine, ONNX Runtime, ... over every
case and batch in each round), each a fresh process timed the way `tome bench` times itself (warm-up, timed runs, the
first quarter discarded, median). The table gives each engine's median over rounds and the paired ratio
ONNX Runtime ms / ToMeEngine ms per round (> 1: ToMeEngine is faster), so load that comes and goes on a shared
machine hits both engines alike.

Models (made on first use under bench/ort/models/, which git ignores): seeded random weights per size, the same
safetensors for both engines (bench/ort/export_onnx.py); r = 0 exported with a dynamic batch, ToMe r > 0 as timm + the
official ToMe traced at each batch (a static graph). Before timing, the script checks that both engines compute the same
function: the real ViT-Ti (../shared/models) on the 8 preprocessed reference images (../shared/reference), at r = 0 and
r = 13, against each other and against timm's logits, and every random model at r = 0 on random inputs.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

import benchenv

benchenv.require("numpy")
import numpy as np  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
MODELS = os.path.join(ROOT, "bench", "ort", "models")
EXPORT = os.path.join(ROOT, "bench", "ort", "export_onnx.py")
TOME = os.path.join(ROOT, "src", "ToMeEngine.Cli", "bin", "Release", "net10.0", "tome.dll")
ORTBENCH = os.path.join(ROOT, "bench", "ort", "OrtBench", "bin", "Release", "net10.0", "ortbench.dll")
REAL_VIT_TI = os.path.join(SHARED, "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k")
REFERENCE_8 = os.path.join(SHARED, "reference", "vit_tiny_8.golden.safetensors")
ARCHS = {"vit_tiny": "vit_tiny_patch16_224", "vit_small": "vit_small_patch16_224", "vit_base": "vit_base_patch16_224"}
LABELS = {"vit_tiny": "ViT-Ti", "vit_small": "ViT-S", "vit_base": "ViT-B"}
# Largest |Δlogit| accepted between the engines in fp32. Both are float32 with different summation orders; on these
# models they agree within a few 1e-5 (and each is within that of timm's float32 logits).
FP32_TOLERANCE = 1e-4

sys.path.insert(0, os.path.join(ROOT, "weights-converter"))


def run(cmd, **kw):
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result.stdout


def python(*args):
    return run(["/usr/bin/python3", EXPORT, *args])


def model_dir(size):
    path = os.path.join(MODELS, f"{size}_random")
    if not os.path.exists(os.path.join(path, "model.safetensors")):
        python("random", ARCHS[size], path)
    return path


def onnx_model(source_dir, stem, r, batch, quant):
    """bench/ort/models/STEM.r{r}[.b{batch}][.int8|.int8pc].onnx, exported (and quantized) on first use."""
    name = f"{stem}.r{r}" + (f".b{batch}" if r > 0 else "")
    path = os.path.join(MODELS, name + ".onnx")
    if not os.path.exists(path):
        python("export", source_dir, path, "--r", str(r), "--batch", str(batch))
    if quant is None:
        return path
    qpath = os.path.join(MODELS, name + (".int8pc" if quant == "per-column" else ".int8") + ".onnx")
    if not os.path.exists(qpath):
        python("quantize", path, qpath, *(["--per-column"] if quant == "per-column" else []))
    return qpath


def tome_logits(model, input_st, r, threads, precision):
    from tomeconv.safetensors_io import load_file

    out = os.path.join(MODELS, "check.tome.safetensors")
    run(["dotnet", TOME, "forward", "--model", model, "--input", input_st, "--output", out, "--r", str(r),
         "--threads", str(threads), *precision_args(precision)])
    tensors = load_file(out)
    tensors = tensors[0] if isinstance(tensors, tuple) else tensors
    return np.asarray(tensors["logits"])


def ort_logits(onnx_path, images, threads):
    raw = os.path.join(MODELS, "check.input.f32")
    out = os.path.join(MODELS, "check.ort.f32")
    images.astype("<f4").tofile(raw)
    run(["dotnet", ORTBENCH, "--onnx", onnx_path, "--batch", str(images.shape[0]), "--threads", str(threads),
         "--input", raw, "--logits", out])
    return np.fromfile(out, dtype="<f4").reshape(images.shape[0], -1)


def precision_args(precision):
    return [] if precision == "fp32" else ["--precision", precision]


def check(args, quant):
    """Both engines on the same inputs; returns report lines. Exits when fp32 logits disagree."""
    from tomeconv.safetensors_io import load_file, save_file

    lines = []
    failures = []

    def compare(label, ours, theirs, reference=None):
        diff = float(np.abs(ours - theirs).max())
        top1 = float((ours.argmax(1) == theirs.argmax(1)).mean()) * 100
        line = f"{label}: max |ToMeEngine − ONNX Runtime| = {diff:.2e}, same top-1 on {top1:.0f}% of images"
        if reference is not None:
            line += (f"; vs timm: ToMeEngine {float(np.abs(ours - reference).max()):.2e}, "
                     f"ONNX Runtime {float(np.abs(theirs - reference).max()):.2e}")
        lines.append(line)
        print(line, flush=True)
        if args.precision == "fp32" and diff > FP32_TOLERANCE:
            failures.append(line)

    if os.path.exists(REFERENCE_8) and os.path.exists(REAL_VIT_TI):
        ref = load_file(REFERENCE_8)
        ref = ref[0] if isinstance(ref, tuple) else ref
        images = np.asarray(ref["input"], dtype=np.float32)
        for r in (0, 13):
            ours = tome_logits(REAL_VIT_TI, REFERENCE_8, r, args.threads, args.precision)
            theirs = ort_logits(onnx_model(REAL_VIT_TI, "vit_tiny_real", r, images.shape[0], quant), images, args.threads)
            compare(f"real ViT-Ti, r = {r}, the 8 reference images", ours, theirs, np.asarray(ref[f"r{r}.logits"]))
    else:
        lines.append("real ViT-Ti check skipped: ../shared/models or ../shared/reference is missing")
        print(lines[-1])
    images = np.random.default_rng(7).uniform(-1, 1, size=(2, 3, 224, 224)).astype(np.float32)
    input_st = os.path.join(MODELS, "check.random.safetensors")
    save_file({"input": images}, input_st)
    for size in sorted({size for size, _ in args.cases}, key=list(ARCHS).index):
        path = model_dir(size)
        ours = tome_logits(path, input_st, 0, args.threads, args.precision)
        theirs = ort_logits(onnx_model(path, size, 0, 2, quant), images, args.threads)
        compare(f"random-weight {LABELS[size]}, r = 0, 2 random images", ours, theirs)
    if failures:
        sys.exit("the engines disagree beyond %.0e:\n%s" % (FP32_TOLERANCE, "\n".join(failures)))
    return lines


def time_tome(model, r, batch, args, runs):
    out = run(["dotnet", TOME, "bench", "--model", model, "--batch", str(batch), "--r", str(r), "--threads", str(args.threads),
               "--runs", str(runs), "--warmup", str(args.warmup), "--json", *precision_args(args.precision)])
    return json.loads(out)["results"][0]["milliseconds_per_batch"]


def time_ort(onnx_path, batch, args, runs):
    out = run(["dotnet", ORTBENCH, "--onnx", onnx_path, "--batch", str(batch), "--threads", str(args.threads),
               "--runs", str(runs), "--warmup", str(args.warmup), "--json"])
    result = json.loads(out)
    return result["ms_per_batch"], result["version"]


def commit_label(tome_given):
    """The commit of the tome.dll timed (its version stamp), not necessarily the checkout's (benchenv.commit_label)."""
    return benchenv.build_commit(TOME, tome_given, ROOT)


def write_report(report, out):
    print()
    print(report)
    if out:
        with open(out, "w") as f:
            f.write(report)


def machine():
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} vCPUs of an {model}, {platform.platform()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="vit_tiny:0,vit_tiny:13,vit_small:0,vit_base:0", help="SIZE:R,... with SIZE in vit_tiny, vit_small, vit_base")
    ap.add_argument("--batches", default="16,1")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=8, help="timed runs per process at batch > 1")
    ap.add_argument("--latency-runs", type=int, default=32, help="timed runs per process at batch 1")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--precision", choices=["fp32", "int8"], default="fp32", help="ToMeEngine's precision; int8 compares with ONNX Runtime's int8 graph")
    ap.add_argument("--ort-quant", choices=["per-tensor", "per-column"], default="per-tensor", help="ONNX Runtime int8: weight scales")
    ap.add_argument("--out", help="also write the results as markdown to this file")
    ap.add_argument("--tome", help="a tome.dll to time instead of this checkout's Release build (e.g. a copy of an older build)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()
    if args.tome:
        global TOME
        TOME = os.path.abspath(args.tome)
    args.cases = [(c.split(":")[0], int(c.split(":")[1])) for c in args.cases.split(",")]
    for size, _ in args.cases:
        if size not in ARCHS:
            sys.exit(f"--cases: unknown size {size} (expected {', '.join(ARCHS)})")
    batches = [int(b) for b in args.batches.split(",")]
    quant = None if args.precision == "fp32" else args.ort_quant
    os.makedirs(MODELS, exist_ok=True)

    if not args.no_build and not args.tome:
        print("building tome and ortbench ...", flush=True)
        run(["dotnet", "build", "src/ToMeEngine.Cli", "-c", "Release", "-v", "q", "-nologo"])
        run(["dotnet", "build", "bench/ort/OrtBench", "-c", "Release", "-v", "q", "-nologo"])
    commit = commit_label(bool(args.tome))
    load_before = os.getloadavg()
    started = datetime.datetime.now()

    check_lines = [] if args.no_check else check(args, quant)

    cells = [(size, r, b) for size, r in args.cases for b in batches]
    paths = {(size, r, b): (model_dir(size), onnx_model(model_dir(size), size, r, b, quant)) for size, r, b in cells}
    tome_ms = {c: [] for c in cells}
    ort_ms = {c: [] for c in cells}
    version = "?"
    for round_index in range(args.rounds):
        for cell in cells:
            size, r, b = cell
            runs = args.latency_runs if b == 1 else args.runs
            model, onnx_path = paths[cell]
            tome_ms[cell].append(time_tome(model, r, b, args, runs))
            ms, version = time_ort(onnx_path, b, args, runs)
            ort_ms[cell].append(ms)
            print(f"round {round_index + 1}/{args.rounds} {LABELS[size]} r{r} batch {b}: ToMeEngine {tome_ms[cell][-1]:.1f} ms, "
                  f"ONNX Runtime {ms:.1f} ms", flush=True)

    load_after = os.getloadavg()
    precision = "int8" if quant else "fp32"
    ort_label = f"ONNX Runtime {version} {precision}" + (f" ({args.ort_quant} weight scales)" if quant else "")
    lines = [
        f"| model | r | batch | ToMeEngine {args.precision} ms | {ort_label} ms | ToMeEngine images/s | ONNX Runtime images/s "
        f"| ONNX Runtime ms ÷ ToMeEngine ms, median of paired rounds (min–max) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cell in cells:
        size, r, b = cell
        ours, theirs = statistics.median(tome_ms[cell]), statistics.median(ort_ms[cell])
        ratios = [o / t for t, o in zip(tome_ms[cell], ort_ms[cell])]
        lines.append(f"| {LABELS[size]} | {r} | {b} | {ours:.1f} | {theirs:.1f} | {1000 * b / ours:.1f} | {1000 * b / theirs:.1f} "
                     f"| **{statistics.median(ratios):.2f}** ({min(ratios):.2f}–{max(ratios):.2f}) |")
    command = "/usr/bin/python3 bench/compare_ort.py " + " ".join(sys.argv[1:])
    header = [
        f"* Machine: {machine()}; .NET {run(['dotnet', '--version']).strip()} SDK. "
        f"Shared with other work: load average {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end "
        f"(2 cores), so only the paired ratios are meaningful, not the absolute times.",
        f"* Date: {started:%Y-%m-%d %H:%M}; commit `{commit}`" + (f" (ToMeEngine timed from {args.tome})." if args.tome else "."),
        f"* Command: `{command}`",
        f"* {args.rounds} rounds; each cell of a round is one `tome bench` process, then one ortbench process "
        f"({args.runs} timed runs at batch > 1, {args.latency_runs} at batch 1, {args.warmup} warm-up, first quarter discarded, median); "
        f"{args.threads} threads in both; ONNX Runtime's CPU execution provider with ORT_ENABLE_ALL.",
    ]
    write_report("\n".join(header + [""] + lines + [""] + [f"* {line}" for line in check_lines]) + "\n", args.out)


if __name__ == "__main__":
    main()
