"""What storing activations in bf16/fp16 costs a timm ViT's logits, by a rounding model: the engine's half-precision
storage against PyTorch's autocast, on the golden fixtures' unmerged cases.

The forward pass is timm's (pre-norm blocks, erf GELU, LayerNorm eps 1e-6, class/distillation tokens, token or avg pool)
written here in float64, with every value rounded to the half type wherever one of the two policies stores it in half;
every op computes in float64 in between, as tensor cores accumulate in fp32 (1e-7, far below a half rounding). Policies:

  engine    the CUDA backend's --precision bf16|fp16 (docs/cuda.md, "Which tensor is in which type"): half weights of
            qkv, proj, fc1, fc2; half LayerNorm outputs, qkv, attention output and GELU output; fp32 biases; proj and
            fc2 add into the fp32 residual stream unrounded (beta = 1); the patch embedding (TF32 in bf16 passes) and
            the head unrounded.
  autocast  PyTorch's CUDA autocast on timm's model: conv and every Linear take half inputs, weights and biases and
            write half outputs (the residual add promotes to fp32 after proj/fc2 were rounded); LayerNorm in fp32;
            scaled_dot_product_attention on half q, k, v with the probabilities rounded to half before P·V (as flash
            attention does) and a half output; the head's logits in half.

Neither is a measurement of a GPU: it isolates what the storage costs, the same for every GPU. Without merging, no
merge decision can flip, so the error is the rounding alone. Usage:
    /usr/bin/python3 bench/half_rounding_model.py [--fixtures ../shared/fixtures] [--markdown]
"""
import argparse, json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchenv  # noqa: E402

benchenv.require("numpy", "torch")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch_vit_baseline import read_safetensors as load  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def rounding(precision):
    """float64 -> the half type (round to nearest even, through fp32 as a GPU's conversion) -> float64."""
    if precision == "none":
        return lambda t: t
    half = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return lambda t: t.to(torch.float32).to(half).to(torch.float64)


def forward(w, cfg, x, policy, precision):
    """The fixture model's logits [B, classes] for the preprocessed batch x under a storage policy."""
    R = rounding(precision)
    auto = policy == "autocast"
    w = {k: v.double() for k, v in w.items()}
    C, H, P = cfg["embed_dim"], cfg["num_heads"], cfg["patch_size"]
    D, B = C // H, x.shape[0]

    def linear(h, name, round_output):
        bias = w[name + ".bias"]
        y = F.linear(R(h), R(w[name + ".weight"]), R(bias) if auto else bias)
        return R(y) if round_output else y

    def norm(t, name):
        return F.layer_norm(t, (C,), w[name + ".weight"], w[name + ".bias"], 1e-6)

    if auto:
        t = R(F.conv2d(R(x), R(w["patch_embed.proj.weight"]), R(w["patch_embed.proj.bias"]), stride=P))
    else:
        t = F.conv2d(x, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=P)
    prefix = []
    if cfg.get("class_token", True):
        prefix.append(w["cls_token"].expand(B, -1, -1))
    if "dist_token" in w:
        prefix.append(w["dist_token"].expand(B, -1, -1))
    t = torch.cat(prefix + [t.flatten(2).transpose(1, 2)], 1) + w["pos_embed"]
    for i in range(cfg["depth"]):
        p = f"blocks.{i}."
        qkv = linear(norm(t, p + "norm1"), p + "attn.qkv", True).reshape(B, -1, 3, H, D).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = ((q @ k.transpose(-2, -1)) * D ** -0.5).softmax(-1)
        o = R(((R(a) if auto else a) @ v).transpose(1, 2).reshape(B, -1, C))
        t = t + linear(o, p + "attn.proj", auto)
        h = R(F.gelu(linear(norm(t, p + "norm2"), p + "mlp.fc1", auto)))
        t = t + linear(h, p + "mlp.fc2", auto)
    head = (lambda h, name: linear(h, name, True)) if auto else (lambda h, name: F.linear(h, w[name + ".weight"], w[name + ".bias"]))
    if cfg.get("global_pool", "token") == "avg":
        prefixes = 1 if cfg.get("class_token", True) else 0
        return head(norm(t[:, prefixes:].mean(1), "fc_norm"), "head")
    n = norm(t, "norm")
    if "head_dist.weight" in w:
        return (head(n[:, 0], "head") + head(n[:, 1], "head_dist")) / 2
    return head(n[:, 0], "head")


def errors(fixtures, model, policy, precision):
    """|logit - float64 reference| over the model's unmerged case (both images): (max, rms, largest |logit|)."""
    w, meta = load(os.path.join(fixtures, model + ".safetensors"))
    golden, gmeta = load(os.path.join(fixtures, model + ".golden.safetensors"))
    cases = json.loads(gmeta["cases"])
    case = next(c for c in cases if c["r"] == 0 and c.get("prop_attn", True))
    reference = golden[case["key"] + ".logits_f64"]
    d = forward(w, json.loads(meta["config"]), golden["input"].double(), policy, precision) - reference
    return d.abs().max().item(), d.pow(2).mean().sqrt().item(), reference.abs().max().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixtures", default=os.path.join(HERE, "..", "..", "shared", "fixtures"))
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    models = sorted(f[:-len(".golden.safetensors")] for f in os.listdir(args.fixtures) if f.endswith(".golden.safetensors"))
    if not models:
        sys.exit(f"no *.golden.safetensors in {args.fixtures}")
    columns = [(p, q) for q in ("bf16", "fp16") for p in ("engine", "autocast")]
    rows = []
    for model in models:
        exact = errors(args.fixtures, model, "engine", "none")
        rows.append((model, exact[2], [errors(args.fixtures, model, p, q) for p, q in columns]))
    if args.markdown:
        print("| model | largest logit | " + " | ".join(f"{q} {p}: max / rms" for p, q in columns) + " |")
        print("|---|---:|" + "---:|" * len(columns))
        for model, largest, cells in rows:
            print(f"| {model} | {largest:.2f} | " + " | ".join(f"{m:.2e} / {r:.2e}" for m, r, _ in cells) + " |")
    else:
        for model, largest, cells in rows:
            print(model, f"largest |logit| {largest:.3f}",
                  *(f"{q}-{p} max {m:.3e} rms {r:.3e}" for (p, q), (m, r, _) in zip(columns, cells)), sep="\n  ")
    worst = {c: max(cells[i][0] for _, _, cells in rows) for i, c in enumerate(columns)}
    print("largest error over the fixtures: " + ", ".join(f"{q} {p} {v:.2e}" for (p, q), v in worst.items()))


if __name__ == "__main__":
    main()
