"""PyTorch baseline for `tome bench` on the CPU: the same ViT (timm's layout and key names) in plain torch, eager, fp32.

timm is not needed: the model is written here from timm's VisionTransformer (pre-norm blocks, erf GELU, LayerNorm eps 1e-6)
and loads the same model.safetensors the engine loads. With r > 0 every block merges tokens as timm patched by the official
ToMe does (bipartite soft matching, size-weighted merge, proportional attention; ../shared/SPEC-merging.md §1-2), so
bench/ort/export_onnx.py can export the ToMe graph from here too. Usage:
    /usr/bin/python3 bench/torch_vit_baseline.py MODEL_DIR [--batch 16] [--runs 8] [--threads N] [--r 13]
Prints images/s measured the way `tome bench` measures (warm-up, timed runs, first quarter discarded, median).
"""
import argparse, json, math, os, struct, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchenv  # noqa: E402

benchenv.require("numpy", "torch")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


SAFETENSORS_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32}


def read_safetensors(path):
    """A safetensors file as ({name: tensor}, its __metadata__); F32, F64 and I32 tensors."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] in SAFETENSORS_DTYPES, f"{path}: {name} is {info['dtype']}"
        b, e = info["data_offsets"]
        array = np.frombuffer(data[b:e], dtype=SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"]).copy()
        out[name] = torch.from_numpy(array)
    return out, header.get("__metadata__", {})


def load_safetensors(path):
    return read_safetensors(path)[0]


def bipartite_merge(x, size, metric, r):
    """ToMe's bipartite soft matching for a model with a class token, then its size-weighted merge (merge_wavg).

    x: [B, T, C]; size: [B, T, 1]; metric: [B, T, D] (keys averaged over heads) -> x, size with T - r tokens in ToMe's
    order [unmerged A tokens in original order, all B tokens]. Written with ops that export to ONNX (TopK, Gather,
    ScatterElements with add) and a constant token count, so the traced graph is static in the tokens.
    """
    B, T, C = x.shape
    r = min(r, (T - 1) // 2)
    if r <= 0:
        return x, size
    m = metric / metric.norm(dim=-1, keepdim=True)
    a, b = m[:, ::2], m[:, 1::2]
    scores = a @ b.transpose(-1, -2)
    # The class token (A0) is never a source.
    protect = torch.zeros(scores.shape[1], 1, dtype=torch.bool)
    protect[0] = True
    scores = scores.masked_fill(protect, -math.inf)
    node_max, node_idx = scores.max(dim=-1)
    edge_idx = node_max.argsort(dim=-1, descending=True)[..., None]
    unm_idx = edge_idx[:, r:].sort(dim=1)[0]  # with a class token the kept tokens stay in their original order
    src_idx = edge_idx[:, :r]
    dst_idx = node_idx[..., None].gather(dim=1, index=src_idx)

    def merge(v):
        src, dst = v[:, ::2], v[:, 1::2]
        n, t1, c = src.shape
        unm = src.gather(dim=1, index=unm_idx.expand(n, t1 - r, c))
        moved = src.gather(dim=1, index=src_idx.expand(n, r, c))
        dst = dst.scatter_add(1, dst_idx.expand(n, r, c), moved)
        return torch.cat([unm, dst], dim=1)

    x = merge(x * size)
    size = merge(size)
    return x / size, size


def forward(w, x, shape, r=0):
    """The ViT's logits; shape: model_shape(w); r > 0 merges r tokens per block (ToMe with proportional attention)."""
    depth, heads, patch, C = shape
    B = x.shape[0]
    t = F.conv2d(x, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=patch).flatten(2).transpose(1, 2)
    t = torch.cat([w["cls_token"].expand(B, -1, -1), t], dim=1) + w["pos_embed"]
    size = None
    for i in range(depth):
        p = f"blocks.{i}."
        h = F.layer_norm(t, (C,), w[p + "norm1.weight"], w[p + "norm1.bias"], 1e-6)
        qkv = F.linear(h, w[p + "attn.qkv.weight"], w[p + "attn.qkv.bias"]).reshape(B, -1, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        logits = (q @ k.transpose(-2, -1)) * (C // heads) ** -0.5
        if size is not None:
            logits = logits + size.log()[:, None, None, :, 0]
        a = logits.softmax(-1)
        t = t + F.linear((a @ v).transpose(1, 2).reshape(B, -1, C), w[p + "attn.proj.weight"], w[p + "attn.proj.bias"])
        if r > 0:
            # ToMe's first merge sees size None, i.e. all ones.
            t, size = bipartite_merge(t, torch.ones_like(t[..., :1]) if size is None else size, k.mean(1), r)
        h = F.layer_norm(t, (C,), w[p + "norm2.weight"], w[p + "norm2.bias"], 1e-6)
        h = F.gelu(F.linear(h, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"]))
        t = t + F.linear(h, w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])
    t = F.layer_norm(t[:, 0], (C,), w["norm.weight"], w["norm.bias"], 1e-6)
    return F.linear(t, w["head.weight"], w["head.bias"])


def model_shape(w):
    """(depth, heads, patch, embed dim) of a timm ViT state dict, as Python ints (constants when traced)."""
    depth = 1 + max(int(k.split(".")[1]) for k in w if k.startswith("blocks."))
    C = int(w["cls_token"].shape[-1])
    heads = {192: 3, 384: 6, 768: 12, 1024: 16}[C]
    return depth, heads, int(w["patch_embed.proj.weight"].shape[-1]), C


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--r", type=int, default=0, help="ToMe: tokens merged per block")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = json.load(open(f"{args.model}/config.json"))
    w = load_safetensors(f"{args.model}/model.safetensors")
    shape = model_shape(w)
    size = cfg["pretrained_cfg"]["input_size"][-1]
    x = torch.randn(args.batch, 3, size, size)
    with torch.inference_mode():
        for _ in range(2):
            forward(w, x, shape, args.r)
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            forward(w, x, shape, args.r)
            times.append(time.perf_counter() - t0)
    kept = sorted(times[args.runs // 4:])
    median = kept[len(kept) // 2]
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": args.batch, "r": args.r,
                      "ms_per_batch": median * 1e3, "images_per_second": args.batch / median}))


if __name__ == "__main__":
    main()
