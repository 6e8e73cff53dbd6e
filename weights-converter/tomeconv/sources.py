"""Readers for the checkpoint forms the converter accepts; each returns timm-named tensors.

* timm state_dict (.pth / .pt / .bin): `torch.load(map_location="cpu", weights_only=True)` where
  the installed torch supports `weights_only` (torch >= 1.13).
* DeiT / training checkpoints: {"model": state_dict, "optimizer": ...}; also "state_dict",
  "model_ema" wrappers and a "module." (DataParallel) key prefix.
* Google AugReg / original ViT .npz (big_vision / vit_jax): mapped exactly as timm's
  `vision_transformer._load_weights` maps it.
* .safetensors already in timm naming (for re-casting or pos-embed resampling).
* a timm model name, when `timm` is importable (pretrained weights through timm's own loader).

Every reader returns (state_dict {name: torch.Tensor float32}, source info dict).
"""
import inspect
import json
import math
import os

import numpy as np
import torch

from .arch import ConvertError
from . import safetensors_io as st

# Keys dropped on load with a note (present in some public checkpoints, unused at inference).
DROPPED_KEYS = ("mask_token",)


def _to_float_tensors(sd):
    out = {}
    for k, v in sd.items():
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(np.ascontiguousarray(v))
        if not isinstance(v, torch.Tensor):
            raise ConvertError("entry %r is a %s, not a tensor" % (k, type(v).__name__))
        out[k] = v.detach().to(torch.float32).contiguous() if v.is_floating_point() else v
    return out


def unwrap_checkpoint(obj):
    """Training checkpoint -> (state_dict, wrapper key or None)."""
    if not isinstance(obj, dict):
        # A pickled nn.Module
        if hasattr(obj, "state_dict"):
            return obj.state_dict(), "module"
        raise ConvertError("checkpoint holds a %s, expected a dict of tensors" % type(obj).__name__)
    for key in ("model", "state_dict", "model_ema", "module"):
        if key in obj and isinstance(obj[key], dict) and not isinstance(obj.get(key), torch.Tensor):
            return obj[key], key
    return obj, None


def load_torch(path, trust_pickle=False):
    """Load a .pth/.bin/.pt file -> (state_dict, info).

    Uses weights_only=True unless `trust_pickle` (needed for checkpoints that pickle other
    Python objects, e.g. an argparse.Namespace; only for files from a trusted source).
    """
    kwargs = {"map_location": "cpu"}
    safe = not trust_pickle and "weights_only" in inspect.signature(torch.load).parameters
    if safe:
        kwargs["weights_only"] = True
    try:
        obj = torch.load(path, **kwargs)
    except Exception as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        text = str(e)
        if safe and any(m in text for m in ("Unsupported class", "Unsupported global", "GLOBAL")):
            raise ConvertError("%s: refused by torch.load(weights_only=True) (%s). The file "
                               "holds pickled Python objects besides tensors; if you trust it, "
                               "pass --trust-pickle (or re-save only its state_dict)."
                               % (path, msg))
        raise ConvertError("%s: cannot be read as a torch checkpoint (%s: %s)"
                           % (path, type(e).__name__, msg))
    sd, wrapper = unwrap_checkpoint(obj)
    prefix = "module."
    if sd and all(k.startswith(prefix) for k in sd):
        sd = {k[len(prefix):]: v for k, v in sd.items()}
    return _to_float_tensors(sd), {"format": "torch", "wrapper": wrapper}


def load_safetensors(path):
    """timm-named .safetensors. An engine single-file config in __metadata__.config (JSON:
    num_heads, mean, std, crop_pct, ...) is returned as info["engine_config"]."""
    tensors, meta = st.load_file(path)
    sd = {k: (v.to_float32() if isinstance(v, st.Bf16) else v) for k, v in tensors.items()}
    info = {"format": "safetensors", "metadata": meta}
    if "config" in meta:
        try:
            cfg = json.loads(meta["config"])
        except ValueError:
            cfg = None
        if isinstance(cfg, dict):
            info["engine_config"] = cfg
    return _to_float_tensors(sd), info


# --- AugReg .npz ------------------------------------------------------------------------------

def _n2p(w, t=True):
    """timm's _n2p: numpy -> torch, HWIO->OIHW / (in,out)->(out,in) transposes when t."""
    if w.ndim == 4 and w.shape[0] == w.shape[1] == w.shape[2] == 1:
        w = w.flatten()
    if t:
        if w.ndim == 4:
            w = w.transpose([3, 2, 0, 1])
        elif w.ndim == 3:
            w = w.transpose([2, 0, 1])
        elif w.ndim == 2:
            w = w.transpose([1, 0])
    return torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))


def npz_to_timm(w):
    """Map {npz key: ndarray} (big_vision / vit_jax names) to timm's names.

    Mirrors timm `_load_weights`: qkv = concat over (query, key, value) of kernel [C, H, Dh]
    flattened to [C, C] and transposed; biases [H, Dh] flattened; out/kernel [H, Dh, C] -> [C, C];
    embedding/kernel [p, p, 3, C] -> [C, 3, p, p]; Dense kernels [in, out] -> [out, in].
    A 'pre_logits' layer (in21k representation layer) is refused: timm drops it for fine-tuning.
    """
    keys = list(w.keys())
    prefix = "opt/target/" if "opt/target/embedding/kernel" in keys else ""

    def get(name):
        full = prefix + name
        if full not in w:
            raise ConvertError("npz: missing array %r" % full)
        return w[full]

    if any(k.startswith(prefix + "conv_root") for k in keys):
        raise ConvertError("npz: hybrid ResNet-ViT checkpoints (conv_root/...) are not supported")
    if prefix + "pre_logits/kernel" in keys:
        raise ConvertError("npz: has a 'pre_logits' representation layer (in21k checkpoint); "
                           "the engine's ViT has none")
    sd = {"patch_embed.proj.weight": _n2p(get("embedding/kernel")),
          "patch_embed.proj.bias": _n2p(get("embedding/bias"))}
    if prefix + "cls" in keys:
        sd["cls_token"] = _n2p(get("cls"), t=False)
    sd["pos_embed"] = _n2p(get("Transformer/posembed_input/pos_embedding"), t=False)
    sd["norm.weight"] = _n2p(get("Transformer/encoder_norm/scale"))
    sd["norm.bias"] = _n2p(get("Transformer/encoder_norm/bias"))
    if prefix + "head/kernel" in keys:
        sd["head.weight"] = _n2p(get("head/kernel"))
        sd["head.bias"] = _n2p(get("head/bias"))
    i = 0
    while prefix + "Transformer/encoderblock_%d/LayerNorm_0/scale" % i in keys:
        bp = "Transformer/encoderblock_%d/" % i
        mp = bp + "MultiHeadDotProductAttention_1/"
        tp = "blocks.%d." % i
        sd[tp + "norm1.weight"] = _n2p(get(bp + "LayerNorm_0/scale"))
        sd[tp + "norm1.bias"] = _n2p(get(bp + "LayerNorm_0/bias"))
        sd[tp + "attn.qkv.weight"] = torch.cat(
            [_n2p(get(mp + n + "/kernel"), t=False).flatten(1).T
             for n in ("query", "key", "value")])
        sd[tp + "attn.qkv.bias"] = torch.cat(
            [_n2p(get(mp + n + "/bias"), t=False).reshape(-1) for n in ("query", "key", "value")])
        sd[tp + "attn.proj.weight"] = _n2p(get(mp + "out/kernel")).flatten(1)
        sd[tp + "attn.proj.bias"] = _n2p(get(mp + "out/bias"))
        for r in range(2):
            sd[tp + "mlp.fc%d.weight" % (r + 1)] = _n2p(get(bp + "MlpBlock_3/Dense_%d/kernel" % r))
            sd[tp + "mlp.fc%d.bias" % (r + 1)] = _n2p(get(bp + "MlpBlock_3/Dense_%d/bias" % r))
        sd[tp + "norm2.weight"] = _n2p(get(bp + "LayerNorm_2/scale"))
        sd[tp + "norm2.bias"] = _n2p(get(bp + "LayerNorm_2/bias"))
        i += 1
    if i == 0:
        raise ConvertError("npz: no 'Transformer/encoderblock_0/...' arrays found")
    return {k: v.contiguous() for k, v in sd.items()}


def load_npz(path):
    with np.load(path) as w:
        arrays = {k: w[k] for k in w.files}
    return npz_to_timm(arrays), {"format": "npz"}


def load_timm_model(name):
    """Pretrained weights of a timm model name via timm (optional dependency)."""
    try:
        import timm  # noqa: F401
    except ImportError:
        raise ConvertError("%r is not a file, and timm is not installed to resolve it as a model "
                           "name" % name)
    import timm
    model = timm.create_model(name, pretrained=True)
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    return _to_float_tensors(model.state_dict()), {"format": "timm", "pretrained_cfg": cfg}


def load_any(path, trust_pickle=False):
    """Dispatch on the input: .npz, .safetensors, other files via torch.load, else a timm name.

    Drops DROPPED_KEYS (listed in info["dropped"]).
    """
    if not os.path.exists(path):
        sd, info = load_timm_model(path)
    else:
        ext = os.path.splitext(path)[1].lower()
        if ext == ".npz":
            sd, info = load_npz(path)
        elif ext == ".safetensors":
            sd, info = load_safetensors(path)
        else:
            sd, info = load_torch(path, trust_pickle=trust_pickle)
    for k in DROPPED_KEYS:
        if k in sd:
            del sd[k]
            info.setdefault("dropped", []).append(k)
    return normalize_keys(sd, info), info


def normalize_keys(sd, info):
    """Rename the non-timm layouts timm's own checkpoint filters accept.

    * DeiT III (facebookresearch/deit): blocks.i.gamma_1 / gamma_2 -> blocks.i.ls1.gamma / ls2.gamma
    * DINOv2 (facebookresearch/dinov2): register_tokens [1, R, C] -> reg_token; their pos_embed
      covers the class token but not the registers, so, like timm's _convert_dinov2, the class
      token absorbs pos_embed[:, 0] and pos_embed keeps the patch grid only (no_embed_class).
      Marks info["origin"] = "dinov2" (also when a mask_token was dropped).
    * old timm: patch_embed.proj.weight stored as a Linear [C, 3*p*p] -> conv [C, 3, p, p].
    """
    out = {}
    for k, v in sd.items():
        parts = k.split(".")
        if len(parts) == 3 and parts[0] == "blocks" and parts[2] in ("gamma_1", "gamma_2"):
            k = "blocks.%s.ls%s.gamma" % (parts[1], parts[2][-1])
        out[k] = v
    if "mask_token" in info.get("dropped", ()):
        info["origin"] = "dinov2"
    if "register_tokens" in out:
        info["origin"] = "dinov2"
        out["reg_token"] = out.pop("register_tokens")
        if "cls_token" in out and "pos_embed" in out:
            out["cls_token"] = out["cls_token"] + out["pos_embed"][:, 0:1]
            out["pos_embed"] = out["pos_embed"][:, 1:].contiguous()
    w = out.get("patch_embed.proj.weight")
    if w is not None and w.dim() == 2:
        p = math.isqrt(w.shape[1] // 3)
        if 3 * p * p != w.shape[1]:
            raise ConvertError("patch_embed.proj.weight has shape %s: not [C, 3*p*p]"
                               % (list(w.shape),))
        out["patch_embed.proj.weight"] = w.reshape(w.shape[0], 3, p, p).contiguous()
    return out
