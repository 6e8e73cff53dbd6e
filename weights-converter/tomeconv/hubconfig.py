"""timm hub-layout config.json (and the engine's single-file `__metadata__.config`).

timm's `push_to_hub` writes: architecture, num_classes, num_features, global_pool,
[label_names], [model_args], pretrained_cfg. `model_args` are constructor kwargs that timm passes
on when it builds the model from the hub; the converter always writes them, so a model whose
dimensions differ from the named timm entrypoint (other depth, image size, register tokens,
avg pool) is still fully described.
"""
import json

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
INCEPTION_MEAN = [0.5, 0.5, 0.5]
INCEPTION_STD = [0.5, 0.5, 0.5]

# Preprocessing presets at 224 px; at >= 384 px timm's configs use crop_pct 1.0.
PRESETS = {
    "augreg": dict(mean=INCEPTION_MEAN, std=INCEPTION_STD, crop_pct=0.9),    # Google ViT / AugReg
    "imagenet": dict(mean=IMAGENET_MEAN, std=IMAGENET_STD, crop_pct=0.875),  # DeiT, DeiT III, MAE
}
FAMILY_PRESET = {"vit": "augreg", "deit": "imagenet", "deit3": "imagenet", "dinov2": "imagenet"}


def pretrained_cfg(arch, preset, tag=None, mean=None, std=None, crop_pct=None,
                   interpolation="bicubic"):
    """timm pretrained_cfg dict for `arch` with the preset's (or overridden) preprocessing."""
    p = PRESETS[preset]
    if crop_pct is None:
        crop_pct = p["crop_pct"] if arch.img_size < 384 else 1.0
    cfg = {}
    if tag:
        cfg["tag"] = tag
    cfg.update({
        "custom_load": False,
        "input_size": [3, arch.img_size, arch.img_size],
        "fixed_input_size": True,
        "interpolation": interpolation,
        "crop_pct": crop_pct,
        "crop_mode": "center",
        "mean": list(mean or p["mean"]),
        "std": list(std or p["std"]),
        "num_classes": arch.num_classes,
        "pool_size": None,
        "first_conv": "patch_embed.proj",
        "classifier": ["head", "head_dist"] if arch.distilled else "head",
    })
    return cfg


def hub_config(arch, name, pcfg, label_names=None):
    """The config.json dict, in timm's key order."""
    cfg = {"architecture": name, "num_classes": arch.num_classes,
           "num_features": arch.embed_dim, "global_pool": arch.global_pool,
           "model_args": arch.model_args(), "pretrained_cfg": pcfg}
    if label_names is not None:
        cfg["label_names"] = list(label_names)
    return cfg


def metadata_config(arch, pcfg):
    """The engine's single-file config (see shared fixtures README): compact JSON string.

    Keys: img_size, patch_size, embed_dim, depth, num_heads, num_classes, class_token,
    global_pool, distilled, mean, std, crop_pct, interpolation; plus mlp_ratio, reg_tokens,
    no_embed_class, fc_norm, layer_scale only when they differ from timm's defaults.
    """
    c = {"img_size": arch.img_size, "patch_size": arch.patch_size, "embed_dim": arch.embed_dim,
         "depth": arch.depth, "num_heads": arch.num_heads, "num_classes": arch.num_classes,
         "class_token": arch.class_token, "global_pool": arch.global_pool,
         "distilled": arch.distilled, "mean": pcfg["mean"], "std": pcfg["std"],
         "crop_pct": pcfg["crop_pct"], "interpolation": pcfg["interpolation"]}
    if arch.mlp_hidden != 4 * arch.embed_dim:
        c["mlp_ratio"] = arch.mlp_ratio
    if arch.reg_tokens:
        c["reg_tokens"] = arch.reg_tokens
    if arch.no_embed_class:
        c["no_embed_class"] = True
    if arch.fc_norm:
        c["fc_norm"] = True
    if arch.layer_scale:
        c["layer_scale"] = True
    return json.dumps(c, separators=(",", ":"))


def read_labels(path):
    """Class names from a text file (one per line) or JSON (a list, or {"label_names": [...]},
    e.g. another model's config.json)."""
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    if path.lower().endswith(".json"):
        obj = json.loads(text)
        names = obj.get("label_names") if isinstance(obj, dict) else obj
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("%s: expected a JSON list of strings or an object with "
                             "'label_names'" % path)
        return names
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return [ln.strip() for ln in lines]
