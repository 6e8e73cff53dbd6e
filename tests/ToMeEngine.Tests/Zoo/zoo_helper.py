"""Test helper for the engine's architecture-zoo tests, run by the C# tests with /usr/bin/python3.

    zoo_helper.py state_dict FAMILY OUT.pth SEED   seeded random timm state_dict of a tiny model (torch.save)
    zoo_helper.py interpolate IN.f32 OUT.f64 IN_H IN_W OUT_H OUT_W C f32|f64
                                                   torch's F.interpolate(bicubic, align_corners=False) of a
                                                   raw float32 [IN_H, IN_W, C] grid, computed in float32 (what
                                                   timm and the converter get) or float64, written as float64
    zoo_helper.py npz MODEL_DIR OUT.npz            a timm ViT re-expressed in the AugReg .npz layout
    zoo_helper.py strip IN.safetensors OUT.safetensors   the same tensors without __metadata__.config
                                                   (the form timm's hub files have: config.json decides)

Key names are written out here from timm's VisionTransformer, not taken from the converter, so the
round trip checks the converter's reading of them too. Exit status 3: torch or numpy is missing.
"""
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover - depends on the machine
    print("torch/numpy not importable: %s" % e, file=sys.stderr)
    sys.exit(3)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "weights-converter"))

# Tiny models: 64 wide, 2 heads, 3 blocks, 32 px images of 8 px patches (a 4x4 grid), 7 classes.
C, HEADS, DEPTH, PATCH, IMG, HIDDEN, CLASSES = 64, 2, 3, 8, 32, 128, 7
GRID = (IMG // PATCH) ** 2

# family -> (class token, distilled, register tokens, no_embed_class, LayerScale, final norm name)
FAMILIES = {
    "vit": (True, False, 0, False, False, "norm"),
    "deit_distilled": (True, True, 0, False, False, "norm"),
    "avg_fc_norm": (False, False, 0, False, False, "fc_norm"),
    "mae": (True, False, 0, False, False, "fc_norm"),
    "deit3": (True, False, 0, True, True, "norm"),
    "registers": (True, False, 4, True, True, "norm"),
    "registers_embedded": (True, False, 4, False, False, "norm"),
}


def state_dict(family, seed):
    cls, dist, regs, no_embed_class, layer_scale, norm = FAMILIES[family]
    g = torch.Generator().manual_seed(seed)

    def uniform(*shape, scale=1.0, center=0.0):
        return (torch.rand(*shape, generator=g) * 2 - 1) * scale + center

    def linear(out_f, in_f):
        # Fan-in scaled, so activations stay O(1) and merge decisions are not near-ties of huge values.
        return uniform(out_f, in_f, scale=1.7 / in_f ** 0.5), uniform(out_f, scale=0.05)

    sd = {}
    sd["patch_embed.proj.weight"] = uniform(C, 3, PATCH, PATCH, scale=1.7 / (3 * PATCH * PATCH) ** 0.5)
    sd["patch_embed.proj.bias"] = uniform(C, scale=0.05)
    prefix = int(cls) + int(dist) + regs
    if cls:
        sd["cls_token"] = uniform(1, 1, C, scale=0.5)
    if dist:
        sd["dist_token"] = uniform(1, 1, C, scale=0.5)
    if regs:
        sd["reg_token"] = uniform(1, regs, C, scale=0.5)
    sd["pos_embed"] = uniform(1, GRID + (0 if no_embed_class else prefix), C, scale=0.5)
    for i in range(DEPTH):
        b = "blocks.%d." % i
        sd[b + "norm1.weight"] = uniform(C, scale=0.2, center=1.0)
        sd[b + "norm1.bias"] = uniform(C, scale=0.05)
        sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"] = linear(3 * C, C)
        sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"] = linear(C, C)
        if layer_scale:
            sd[b + "ls1.gamma"] = uniform(C, scale=0.4, center=0.5)
            sd[b + "ls2.gamma"] = uniform(C, scale=0.4, center=0.5)
        sd[b + "norm2.weight"] = uniform(C, scale=0.2, center=1.0)
        sd[b + "norm2.bias"] = uniform(C, scale=0.05)
        sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"] = linear(HIDDEN, C)
        sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"] = linear(C, HIDDEN)
    sd[norm + ".weight"] = uniform(C, scale=0.2, center=1.0)
    sd[norm + ".bias"] = uniform(C, scale=0.05)
    sd["head.weight"], sd["head.bias"] = linear(CLASSES, C)
    if dist:
        sd["head_dist.weight"], sd["head_dist.bias"] = linear(CLASSES, C)
    return sd


def interpolate(src, dst, in_h, in_w, out_h, out_w, c, dtype):
    grid = torch.from_numpy(np.fromfile(src, dtype="<f4").reshape(1, in_h, in_w, c)).permute(0, 3, 1, 2)
    grid = grid.double() if dtype == "f64" else grid
    out = F.interpolate(grid, size=(out_h, out_w), mode="bicubic", align_corners=False)
    out.permute(0, 2, 3, 1).contiguous().double().numpy().astype("<f8").tofile(dst)


def main(argv):
    cmd = argv[1]
    if cmd == "state_dict":
        torch.save(state_dict(argv[2], int(argv[4])), argv[3])
    elif cmd == "interpolate":
        interpolate(argv[2], argv[3], *map(int, argv[4:9]), argv[9])
    elif cmd == "npz":
        from tomeconv import safetensors_io as st
        sys.path.insert(0, os.path.join(ROOT, "weights-converter", "tests"))
        from test_convert import timm_to_npz  # the converter tests' inverse of timm's _load_weights
        sd, _ = st.load_file(os.path.join(argv[2], "model.safetensors"))
        heads = {192: 3, 384: 6, 768: 12}[sd["patch_embed.proj.weight"].shape[0]]
        np.savez(argv[3], **timm_to_npz(sd, heads=heads))
    elif cmd == "strip":
        from tomeconv import safetensors_io as st
        sd, _ = st.load_file(argv[2])
        st.save_file(sd, argv[3], metadata={"format": "pt"})
    else:
        raise SystemExit("unknown command %r" % cmd)


if __name__ == "__main__":
    main(sys.argv)
