"""Conversion pipeline and command line: checkpoint -> OUTDIR/{model.safetensors, config.json}."""
import argparse
import dataclasses
import json
import os
import sys

import numpy as np
import torch

from . import arch as A
from . import hubconfig as H
from . import safetensors_io as st
from .posembed import resample_abs_pos_embed
from .sources import load_any

DTYPES = ("f32", "f16", "bf16")


def _note(msg):
    print("note: " + msg, file=sys.stderr)


def _check_against_name(inferred, named, name):
    """Refuse when the tensors do not have the dimensions of the named architecture."""
    fields = ("embed_dim", "depth", "patch_size", "mlp_hidden", "distilled", "layer_scale",
              "no_embed_class", "class_token", "reg_tokens")
    bad = ["%s: checkpoint has %s, %s has %s" % (f, getattr(inferred, f), name, getattr(named, f))
           for f in fields if getattr(inferred, f) != getattr(named, f)]
    if bad:
        raise A.ConvertError("checkpoint does not match --arch %s:\n  %s"
                             % (name, "\n  ".join(bad)))


def guess_family(arch, info, arch_name):
    if arch_name:
        return A.family_of(arch_name)
    if info.get("origin") == "dinov2":
        return "dinov2"
    if arch.layer_scale and arch.patch_size == 14:
        return "dinov2"
    if arch.layer_scale and arch.no_embed_class and not arch.reg_tokens:
        return "deit3"
    if arch.distilled or info.get("wrapper") == "model":
        return "deit"
    return "vit"


def to_storage(sd, dtype):
    """{name: float32 tensor} -> {name: numpy array | Bf16} in the storage dtype."""
    out = {}
    for k, v in sd.items():
        if not v.is_floating_point():
            out[k] = v.numpy()
        elif dtype == "f32":
            out[k] = v.to(torch.float32).numpy()
        elif dtype == "f16":
            out[k] = v.to(torch.float16).numpy()
        else:
            out[k] = st.Bf16(v.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16))
    return out


def convert(inp, outdir, arch_name=None, num_classes=None, dtype="f32", img_size=None,
            labels=None, force=False, num_heads=None, preset=None, mean=None, std=None,
            crop_pct=None, trust_pickle=False, antialias=False):
    """Convert `inp` (file path or timm model name) into the hub layout in `outdir`.

    Returns the written config dict. Raises ConvertError with a message for the user.
    """
    if dtype not in DTYPES:
        raise A.ConvertError("--dtype must be one of %s, got %r" % (", ".join(DTYPES), dtype))
    files = [os.path.join(outdir, n) for n in ("model.safetensors", "config.json")]
    if not force and any(os.path.exists(f) for f in files):
        raise A.ConvertError("%s already holds a converted model; pass --force to overwrite"
                             % outdir)
    labels_list = H.read_labels(labels) if labels else None

    sd, info = load_any(inp, trust_pickle=trust_pickle)
    if info.get("dropped"):
        _note("dropped tensors unused at inference: %s" % ", ".join(info["dropped"]))
    tag = None
    if info["format"] == "timm" and not arch_name:
        arch_name = inp
    if arch_name and "." in arch_name:
        arch_name, tag = arch_name.split(".", 1)
    # timm's own name for a model loaded through timm is trusted even when not in our table
    trusted = info["format"] == "timm" and arch_name not in A.KNOWN
    named = A.arch_from_name(arch_name) if arch_name and not trusted else None
    ecfg = info.get("engine_config") or {}
    if num_heads is None and named is None and isinstance(ecfg.get("num_heads"), int):
        num_heads = ecfg["num_heads"]
    arch = A.infer_arch(sd, num_heads=num_heads or (named.num_heads if named else None),
                        img_size_hint=img_size or (named.img_size if named else None))
    if named:
        _check_against_name(arch, named, arch_name)
        if arch.img_size != named.img_size and img_size is None:
            raise A.ConvertError("pos_embed is for %d px but %s is %d px; pass --img-size %d to "
                                 "resample it" % (arch.img_size, arch_name, named.img_size,
                                                  named.img_size))

    # classifier
    if num_classes is not None and num_classes != arch.num_classes:
        if num_classes == 0:
            for k in ("head.weight", "head.bias", "head_dist.weight", "head_dist.bias"):
                sd.pop(k, None)
            arch.num_classes = 0
        else:
            raise A.ConvertError("--num-classes %d but head.weight has %d rows; only 0 (drop the "
                                 "head) or the checkpoint's own count are possible"
                                 % (num_classes, arch.num_classes))
    A.validate(sd, arch)

    # position embedding
    if img_size is not None and img_size != arch.img_size:
        if img_size % arch.patch_size:
            raise A.ConvertError("--img-size %d is not a multiple of the patch size %d"
                                 % (img_size, arch.patch_size))
        g = img_size // arch.patch_size
        npfx = 0 if arch.no_embed_class else arch.num_prefix_tokens
        sd["pos_embed"] = resample_abs_pos_embed(sd["pos_embed"], (g, g), npfx, antialias=antialias)
        _note("resampled pos_embed from %dx%d to %dx%d patches" % (arch.grid, arch.grid, g, g))
        arch = dataclasses.replace(arch, img_size=img_size)
        A.validate(sd, arch)

    family = guess_family(arch, info, arch_name)
    name, exact = A.timm_name(arch, family) if not arch_name else (arch_name, True)
    if arch_name and img_size and named and img_size != named.img_size:
        name, exact = A.timm_name(arch, family)
    if not exact:
        _note("no registered timm model has exactly these dimensions (%s); architecture %r with "
              "model_args describing them" % (A.describe(arch), name))

    preset_given = preset
    if preset is None:
        preset = H.FAMILY_PRESET[family]
        if arch.fc_norm or not arch.class_token:
            preset = "imagenet"
        if not arch_name and info["format"] in ("torch", "safetensors") and family == "vit" \
                and not ecfg.get("mean"):
            _note("assuming %s preprocessing (mean/std, crop_pct) for a plain state_dict; pass "
                  "--preset or --mean/--std/--crop-pct if the model was trained otherwise" % preset)
    src = info.get("pretrained_cfg") or ecfg
    if src and preset_given is None:
        mean = mean or src.get("mean")
        std = std or src.get("std")
        crop_pct = crop_pct if crop_pct is not None else src.get("crop_pct")
        tag = tag or src.get("tag")
    pcfg = H.pretrained_cfg(arch, preset, tag=tag, mean=mean, std=std, crop_pct=crop_pct)
    if labels_list is not None and len(labels_list) != arch.num_classes:
        raise A.ConvertError("--labels %s has %d names but the model has %d classes"
                             % (labels, len(labels_list), arch.num_classes))
    config = H.hub_config(arch, name, pcfg, labels_list)

    os.makedirs(outdir, exist_ok=True)
    meta = {"format": "pt", "config": H.metadata_config(arch, pcfg)}
    st.save_file(to_storage(sd, dtype), files[0], metadata=meta)
    with open(files[1], "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    return config


def build_parser():
    p = argparse.ArgumentParser(
        prog="tome_convert.py",
        description="Convert a ViT/DeiT checkpoint (timm state_dict .pth/.bin, "
                    "DeiT {'model': ...}, "
                    "Google AugReg .npz, .safetensors, or a timm model name when timm is "
                    "installed) into timm's hub layout: OUTDIR/model.safetensors + config.json.")
    p.add_argument("input", help="checkpoint file, or a timm model name (needs timm)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    p.add_argument("--arch", help="timm model name (optionally .tag), e.g. vit_base_patch16_224 "
                                  "or deit_small_patch16_224.fb_in1k; checked against the tensors")
    p.add_argument("--num-classes", type=int, help="0 drops the classifier head")
    p.add_argument("--num-heads", type=int, help="attention heads, for non-standard widths")
    p.add_argument("--dtype", default="f32", choices=DTYPES, help="storage dtype (default f32)")
    p.add_argument("--img-size", type=int, help="resample pos_embed for this input size")
    p.add_argument("--labels", help="class names: text file, one per line, or JSON list / "
                                    "config.json with label_names")
    p.add_argument("--preset", choices=sorted(H.PRESETS),
                   help="preprocessing preset: augreg (mean=std=0.5, crop 0.9) or imagenet "
                        "(ImageNet mean/std, crop 0.875); default from the model family")
    p.add_argument("--mean", type=float, nargs=3)
    p.add_argument("--std", type=float, nargs=3)
    p.add_argument("--crop-pct", type=float)
    p.add_argument("--antialias", action="store_true",
                   help="antialias when downsampling pos_embed (timm's newer default)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="torch.load without weights_only (trusted files only)")
    p.add_argument("--force", action="store_true", help="overwrite OUTDIR's files")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        cfg = convert(args.input, args.output, arch_name=args.arch, num_classes=args.num_classes,
                      dtype=args.dtype, img_size=args.img_size, labels=args.labels,
                      force=args.force, num_heads=args.num_heads, preset=args.preset,
                      mean=args.mean, std=args.std, crop_pct=args.crop_pct,
                      trust_pickle=args.trust_pickle, antialias=args.antialias)
    except (A.ConvertError, OSError, ValueError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    print("wrote %s (%s, %d classes, %s)" % (args.output, cfg["architecture"], cfg["num_classes"],
                                             args.dtype))
    return 0
