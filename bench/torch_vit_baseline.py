"""PyTorch baseline for `tome bench` on the CPU: the same ViT (timm's layout and key names) in plain torch, eager, fp32.

timm is not needed: the model is written here from timm's VisionTransformer (pre-norm blocks, erf GELU, LayerNorm eps 1e-6)
and loads the same model.safetensors the engine loads. Usage:
    /usr/bin/python3 bench/torch_vit_baseline.py MODEL_DIR [--batch 16] [--runs 8] [--threads N]
Prints images/s measured the way `tome bench` measures (warm-up, timed runs, first quarter discarded, median).
"""
import argparse, json, struct, time
import numpy as np
import torch
import torch.nn.functional as F


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", name
        b, e = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype=np.float32).reshape(info["shape"]).copy())
    return out


def forward(w, x, depth, heads, patch):
    B = x.shape[0]
    t = F.conv2d(x, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=patch).flatten(2).transpose(1, 2)
    t = torch.cat([w["cls_token"].expand(B, -1, -1), t], dim=1) + w["pos_embed"]
    C = t.shape[-1]
    for i in range(depth):
        p = f"blocks.{i}."
        h = F.layer_norm(t, (C,), w[p + "norm1.weight"], w[p + "norm1.bias"], 1e-6)
        qkv = F.linear(h, w[p + "attn.qkv.weight"], w[p + "attn.qkv.bias"]).reshape(B, -1, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = ((q @ k.transpose(-2, -1)) * (C // heads) ** -0.5).softmax(-1)
        t = t + F.linear((a @ v).transpose(1, 2).reshape(B, -1, C), w[p + "attn.proj.weight"], w[p + "attn.proj.bias"])
        h = F.layer_norm(t, (C,), w[p + "norm2.weight"], w[p + "norm2.bias"], 1e-6)
        h = F.gelu(F.linear(h, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"]))
        t = t + F.linear(h, w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])
    t = F.layer_norm(t[:, 0], (C,), w["norm.weight"], w["norm.bias"], 1e-6)
    return F.linear(t, w["head.weight"], w["head.bias"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = json.load(open(f"{args.model}/config.json"))
    w = load_safetensors(f"{args.model}/model.safetensors")
    depth = 1 + max(int(k.split(".")[1]) for k in w if k.startswith("blocks."))
    C = w["cls_token"].shape[-1]
    heads = {192: 3, 384: 6, 768: 12, 1024: 16}[C]
    patch = w["patch_embed.proj.weight"].shape[-1]
    size = cfg["pretrained_cfg"]["input_size"][-1]
    x = torch.randn(args.batch, 3, size, size)
    with torch.inference_mode():
        for _ in range(2):
            forward(w, x, depth, heads, patch)
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            forward(w, x, depth, heads, patch)
            times.append(time.perf_counter() - t0)
    kept = sorted(times[args.runs // 4:])
    median = kept[len(kept) // 2]
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": args.batch,
                      "ms_per_batch": median * 1e3, "images_per_second": args.batch / median}))


if __name__ == "__main__":
    main()
