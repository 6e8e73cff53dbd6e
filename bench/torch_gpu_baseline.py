"""PyTorch baselines for `tome bench --backend cuda`: the same ViTs on the same GPU, in the same run.

The model is torch_vit_baseline.forward (timm's ViT written out, ToMe from ../shared/SPEC-merging.md when r > 0) on
seeded random weights of the named architecture, so timm is not needed and the engine's `--random-weights` model has
the same shapes. Variants, each timed with CUDA events (warm-up, timed runs, first quarter discarded, median):
    eager-fp32           plain eager, fp32 (what the engine's fp32 path competes with)
    eager-fp16-autocast  eager under torch.autocast(float16)
    compile-fp16         torch.compile of the same forward under autocast, at the r values of --compile-r only (default 0:
                         every configuration compiles anew, which would not fit the device check's time otherwise);
                         where torch.compile is unavailable the row says why
Usage:
    python3 bench/torch_gpu_baseline.py [--models ViT-S,ViT-B,ViT-L] [--batch 1,64,256] [--r 0,13,16] [--runs 20]
        [--variants eager-fp32,eager-fp16-autocast,compile-fp16] [--compile-r 0] [--device cuda] [--json OUT.json]
One JSON object per line on stdout; with --device cpu it runs small sizes anywhere (a rehearsal, not a baseline).
"""
import argparse, json, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchenv  # noqa: E402

benchenv.require("torch")
import torch  # noqa: E402
from torch_vit_baseline import forward  # noqa: E402

ARCHS = {"ViT-Ti": (12, 3, 192), "ViT-S": (12, 6, 384), "ViT-B": (12, 12, 768), "ViT-L": (24, 16, 1024)}


def random_weights(name, device, classes=1000, patch=16, image=224):
    depth, heads, c = ARCHS[name]
    g = torch.Generator().manual_seed(0)
    t = (image // patch) ** 2 + 1

    def p(*shape, std=0.02):
        return (torch.randn(*shape, generator=g) * std).to(device)

    w = {"patch_embed.proj.weight": p(c, 3, patch, patch), "patch_embed.proj.bias": p(c), "cls_token": p(1, 1, c),
         "pos_embed": p(1, t, c), "norm.weight": 1 + p(c), "norm.bias": p(c), "head.weight": p(classes, c), "head.bias": p(classes)}
    for i in range(depth):
        b = f"blocks.{i}."
        w.update({b + "norm1.weight": 1 + p(c), b + "norm1.bias": p(c), b + "attn.qkv.weight": p(3 * c, c), b + "attn.qkv.bias": p(3 * c),
                  b + "attn.proj.weight": p(c, c), b + "attn.proj.bias": p(c), b + "norm2.weight": 1 + p(c), b + "norm2.bias": p(c),
                  b + "mlp.fc1.weight": p(4 * c, c), b + "mlp.fc1.bias": p(4 * c), b + "mlp.fc2.weight": p(c, 4 * c), b + "mlp.fc2.bias": p(c)})
    return w, (depth, heads, patch, c)


def timer(device):
    if device == "cuda":
        def run(fn):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
    else:
        def run(fn):
            t0 = time.perf_counter()
            fn()
            return (time.perf_counter() - t0) * 1e3
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="ViT-S,ViT-B,ViT-L")
    ap.add_argument("--batch", default="1,64,256")
    ap.add_argument("--r", default="0,13,16")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--variants", default="eager-fp32,eager-fp16-autocast,compile-fp16")
    ap.add_argument("--compile-r", default="0", help="the r values torch.compile runs at (each (model, batch, r) compiles anew)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json", help="also write all rows to this file")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: torch.cuda.is_available() is False (torch %s); use --device cpu for a rehearsal" % torch.__version__)
    if a.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # the engine's fp32 GEMMs do not use TF32 either
        torch.backends.cudnn.allow_tf32 = False
    gpu = torch.cuda.get_device_name() if a.device == "cuda" else "cpu"
    run = timer(a.device)
    rows = []
    for name in a.models.split(","):
        w, shape = random_weights(name, a.device)
        for batch in map(int, a.batch.split(",")):
            x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(1)).to(a.device)
            for r in map(int, a.r.split(",")):
                for variant in a.variants.split(","):
                    if variant.startswith("compile") and str(r) not in a.compile_r.split(","):
                        continue
                    row = {"torch": torch.__version__, "device": gpu, "model": name, "batch": batch, "r": r, "variant": variant}
                    try:
                        fn = forward
                        if variant.startswith("compile"):
                            if not hasattr(torch, "compile"):
                                raise RuntimeError("torch.compile needs PyTorch 2")
                            fn = torch.compile(forward, dynamic=False)
                        fp16 = "fp16" in variant
                        dtype = torch.float16 if a.device == "cuda" else torch.bfloat16

                        def step():
                            with torch.inference_mode(), torch.autocast(a.device, dtype=dtype, enabled=fp16):
                                fn(w, x, shape, r)

                        for _ in range(a.warmup):
                            step()
                        times = [run(step) for _ in range(a.runs)]
                        kept = sorted(times[a.runs // 4:])
                        ms = kept[len(kept) // 2]
                        row.update(ms_per_batch=ms, images_per_second=batch / (ms / 1e3))
                    except Exception as e:  # one variant failing (OOM, no compiler) must not lose the others
                        row.update(error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                        if a.device == "cuda":
                            torch.cuda.empty_cache()
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    if a.json:  # after every row, so that a run stopped by a time limit keeps what it measured
                        with open(a.json, "w") as f:
                            json.dump(rows, f, indent=1)
        del w


if __name__ == "__main__":
    main()
