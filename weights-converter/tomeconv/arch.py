"""ViT / DeiT architecture description, inference from tensor shapes, naming and validation.

An `Arch` holds everything needed to build timm's `VisionTransformer` (or
`VisionTransformerDistilled`) and to check a state_dict against it. Shapes below use
C = embed_dim, D = depth, Hm = MLP hidden width, p = patch size, K = num_classes,
P = number of prefix tokens (class + distillation + register), G = (img_size / p)^2.

    patch_embed.proj.weight [C, 3, p, p]   patch_embed.proj.bias [C]
    cls_token [1, 1, C]      dist_token [1, 1, C]     reg_token [1, R, C]
    pos_embed [1, G + P, C]  (or [1, G, C] when no_embed_class: prefix tokens get no position)
    blocks.i.norm1.{weight,bias} [C]       blocks.i.attn.qkv.weight [3C, C]  .bias [3C]
    blocks.i.attn.proj.weight [C, C] .bias [C]       blocks.i.ls1.gamma [C] (LayerScale)
    blocks.i.norm2.{weight,bias} [C]       blocks.i.mlp.fc1.weight [Hm, C] .bias [Hm]
    blocks.i.mlp.fc2.weight [C, Hm] .bias [C]        blocks.i.ls2.gamma [C] (LayerScale)
    norm.{weight,bias} [C]  or  fc_norm.{weight,bias} [C] (global_pool = avg, MAE fine-tuned)
    head.weight [K, C] head.bias [K]       head_dist.weight [K, C] head_dist.bias [K]

Limits: LayerNorm only, learned absolute position embedding, square images and patches,
3 input channels, qkv bias present, no qk-norm, no representation layer (pre_logits).
"""
import dataclasses
import math

# Standard widths -> number of heads (head dim 64). Other widths need --arch or --num-heads.
STANDARD_HEADS = {192: 3, 384: 6, 512: 8, 768: 12, 1024: 16, 1280: 16}
SIZE_NAMES = {192: "tiny", 384: "small", 512: "medium", 768: "base", 1024: "large", 1280: "huge"}


class ConvertError(Exception):
    """A user-facing error: the message names what is wrong and what was expected."""


@dataclasses.dataclass
class Arch:
    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int
    img_size: int
    mlp_hidden: int
    num_classes: int
    class_token: bool = True
    distilled: bool = False
    reg_tokens: int = 0
    no_embed_class: bool = False
    layer_scale: bool = False
    global_pool: str = "token"   # "token" or "avg"
    fc_norm: bool = False        # avg pool through fc_norm (final `norm` is then absent)

    @property
    def num_prefix_tokens(self):
        return int(self.class_token) + int(self.distilled) + self.reg_tokens

    @property
    def grid(self):
        return self.img_size // self.patch_size

    @property
    def pos_tokens(self):
        return self.grid ** 2 + (0 if self.no_embed_class else self.num_prefix_tokens)

    @property
    def mlp_ratio(self):
        return self.mlp_hidden / self.embed_dim

    def model_args(self):
        """Constructor kwargs for timm's VisionTransformer that rebuild exactly this model."""
        args = dict(img_size=self.img_size, patch_size=self.patch_size, embed_dim=self.embed_dim,
                    depth=self.depth, num_heads=self.num_heads, mlp_ratio=self.mlp_ratio,
                    class_token=self.class_token, global_pool=self.global_pool)
        if self.global_pool == "avg":
            args["fc_norm"] = self.fc_norm
        if self.reg_tokens:
            args["reg_tokens"] = self.reg_tokens
        if self.no_embed_class:
            args["no_embed_class"] = True
        if self.layer_scale:
            args["init_values"] = 1e-5  # any non-None value creates ls1/ls2; weights overwrite it
        return args

    def expected_shapes(self):
        """{timm key: shape tuple} for every tensor this architecture owns."""
        c, hm, p = self.embed_dim, self.mlp_hidden, self.patch_size
        s = {"patch_embed.proj.weight": (c, 3, p, p), "patch_embed.proj.bias": (c,),
             "pos_embed": (1, self.pos_tokens, c)}
        if self.class_token:
            s["cls_token"] = (1, 1, c)
        if self.distilled:
            s["dist_token"] = (1, 1, c)
        if self.reg_tokens:
            s["reg_token"] = (1, self.reg_tokens, c)
        for i in range(self.depth):
            b = "blocks.%d." % i
            s.update({b + "norm1.weight": (c,), b + "norm1.bias": (c,),
                      b + "attn.qkv.weight": (3 * c, c), b + "attn.qkv.bias": (3 * c,),
                      b + "attn.proj.weight": (c, c), b + "attn.proj.bias": (c,),
                      b + "norm2.weight": (c,), b + "norm2.bias": (c,),
                      b + "mlp.fc1.weight": (hm, c), b + "mlp.fc1.bias": (hm,),
                      b + "mlp.fc2.weight": (c, hm), b + "mlp.fc2.bias": (c,)})
            if self.layer_scale:
                s[b + "ls1.gamma"] = (c,)
                s[b + "ls2.gamma"] = (c,)
        norm = "fc_norm" if self.fc_norm else "norm"
        s[norm + ".weight"] = (c,)
        s[norm + ".bias"] = (c,)
        if self.num_classes:
            s["head.weight"] = (self.num_classes, c)
            s["head.bias"] = (self.num_classes,)
            if self.distilled:
                s["head_dist.weight"] = (self.num_classes, c)
                s["head_dist.bias"] = (self.num_classes,)
        return s


# --- timm model registry (the subset this converter names) -----------------------------------

def _reg(family, size, p, img, depth=None, distilled=False, **kw):
    c = {"tiny": 192, "small": 384, "medium": 512, "base": 768, "large": 1024, "huge": 1280}[size]
    d = depth or {"tiny": 12, "small": 12, "medium": 12, "base": 12, "large": 24, "huge": 32}[size]
    a = dict(embed_dim=c, depth=d, num_heads=STANDARD_HEADS[c], patch_size=p, img_size=img,
             mlp_hidden=4 * c, distilled=distilled, **kw)
    if family == "deit":
        name = "deit_%s%s_patch%d_%d" % (size, "_distilled" if distilled else "", p, img)
    elif family == "deit3":
        name = "deit3_%s_patch%d_%d" % (size, p, img)
    else:
        name = "vit_%s_patch%d_%d" % (size, p, img)
    return name, family, a


KNOWN = {}
for _n, _f, _a in (
    [_reg("vit", s, p, i) for s, p, i in [
        ("tiny", 16, 224), ("tiny", 16, 384), ("small", 32, 224), ("small", 32, 384),
        ("small", 16, 224), ("small", 16, 384), ("small", 8, 224), ("base", 32, 224),
        ("base", 32, 384), ("base", 16, 224), ("base", 16, 384), ("base", 8, 224),
        ("large", 32, 224), ("large", 32, 384), ("large", 16, 224), ("large", 16, 384),
        ("large", 14, 224), ("huge", 14, 224)]]
    + [_reg("deit", s, 16, i, distilled=d) for s, i in
       [("tiny", 224), ("small", 224), ("base", 224), ("base", 384)] for d in (False, True)]
    + [_reg("deit3", s, 16, i, layer_scale=True, no_embed_class=True) for s, i in
       [("small", 224), ("small", 384), ("medium", 224), ("base", 224), ("base", 384),
        ("large", 224), ("large", 384), ("huge", 224)]]
):
    KNOWN[_n] = (_f, _a)
# deit3_huge is patch 14
KNOWN["deit3_huge_patch14_224"] = KNOWN.pop("deit3_huge_patch16_224")
KNOWN["deit3_huge_patch14_224"][1]["patch_size"] = 14
# DINOv2 backbones (no head; SwiGLU giant not supported)
for _s in ("small", "base", "large"):
    _a = _reg("vit", _s, 14, 518, layer_scale=True)[2]
    KNOWN["vit_%s_patch14_dinov2" % _s] = ("dinov2", _a)
    KNOWN["vit_%s_patch14_reg4_dinov2" % _s] = ("dinov2", dict(_a, reg_tokens=4,
                                                                no_embed_class=True))

# Arch fields a KNOWN entry may leave out, with timm's defaults
_DEFAULTS = dict(class_token=True, distilled=False, reg_tokens=0, no_embed_class=False,
                 layer_scale=False, global_pool="token", fc_norm=False)


def family_of(name):
    """'vit', 'deit', 'deit3' or 'dinov2' for a known (or plausibly named) timm architecture."""
    base = name.split(".")[0]
    if base in KNOWN:
        return KNOWN[base][0]
    if base.startswith("deit3"):
        return "deit3"
    if base.endswith("dinov2"):
        return "dinov2"
    return "deit" if base.startswith("deit") else "vit"


def _matches(arch, a):
    return all(getattr(arch, k) == v for k, v in dict(_DEFAULTS, **a).items())


def timm_name(arch, family_hint=None):
    """(name, exact) : the timm entrypoint for `arch`.

    exact=True when a registered timm model has exactly these dimensions; otherwise the timm
    entrypoint of the same class (distilled or not) closest by family, register tokens, width,
    patch and image size, whose constructor the written `model_args` override to rebuild
    this model.
    """
    exact = [n for n, (f, a) in KNOWN.items() if _matches(arch, a)]
    if family_hint:
        preferred = [n for n in exact if KNOWN[n][0] == family_hint]
        exact = preferred or exact
    if exact:
        # vit_* and deit_* (non-distilled) share shapes: the hinted family wins, else vit
        return min(exact, key=lambda n: (KNOWN[n][0] != (family_hint or "vit"), n)), True
    pref = family_hint or ("deit" if arch.distilled else "vit")
    same = [n for n, (f, a) in KNOWN.items() if a["distilled"] == arch.distilled]

    def rank(n):
        f, a = KNOWN[n]
        return (f != pref, a.get("reg_tokens", 0) != arch.reg_tokens,
                a["embed_dim"] != arch.embed_dim, a["patch_size"] != arch.patch_size,
                a["img_size"] != arch.img_size, n)
    return min(same, key=rank), False


def arch_from_name(name):
    """Arch (num_classes 1000) for a known timm model name (an optional '.tag' is ignored)."""
    base = name.split(".")[0]
    if base not in KNOWN:
        raise ConvertError("unknown architecture %r; known: %s" % (name, ", ".join(sorted(KNOWN))))
    return Arch(num_classes=1000, **KNOWN[base][1])


# --- inference --------------------------------------------------------------------------------

def _shape(sd, key):
    return tuple(sd[key].shape)


def infer_arch(sd, num_heads=None, name=None, img_size_hint=None):
    """Infer an Arch from a timm-named state_dict {key: tensor}.

    `num_heads` (or the heads of the known model `name`) is required when embed_dim is not one
    of STANDARD_HEADS. `img_size_hint` picks between the two readings of pos_embed (prefix
    tokens with or without a position) when both fit a square grid. Raises ConvertError naming
    the tensor or property that is ambiguous.
    """
    if "patch_embed.proj.weight" not in sd:
        raise ConvertError("missing tensor 'patch_embed.proj.weight': not a timm ViT state_dict "
                           "(first keys: %s)" % ", ".join(sorted(sd)[:8]))
    w = _shape(sd, "patch_embed.proj.weight")
    if len(w) != 4 or w[2] != w[3] or w[1] != 3:
        raise ConvertError("patch_embed.proj.weight has shape %s, expected [C, 3, p, p]"
                           % (list(w),))
    c, p = w[0], w[2]
    depth = 0
    while "blocks.%d.norm1.weight" % depth in sd:
        depth += 1
    if depth == 0:
        raise ConvertError("no transformer blocks found (missing 'blocks.0.norm1.weight')")
    numbered = {k.split(".")[1] for k in sd if k.startswith("blocks.")}
    stray = sorted(numbered - {str(i) for i in range(depth)}, key=lambda s: (len(s), s))
    if stray:
        raise ConvertError("blocks are not numbered 0..%d: found also blocks.%s"
                           % (depth - 1, stray[0]))
    hm = _shape(sd, "blocks.0.mlp.fc1.weight")[0] if "blocks.0.mlp.fc1.weight" in sd else 4 * c

    if num_heads is None and name:
        num_heads = arch_from_name(name).num_heads
    if num_heads is None:
        if c not in STANDARD_HEADS:
            raise ConvertError(
                "cannot infer the number of attention heads: embed_dim %d is not a standard ViT "
                "width (%s); pass --arch NAME or --num-heads N"
                % (c, ", ".join("%d->%d" % kv for kv in sorted(STANDARD_HEADS.items()))))
        num_heads = STANDARD_HEADS[c]
    if c % num_heads:
        raise ConvertError("embed_dim %d is not divisible by num_heads %d" % (c, num_heads))

    class_token = "cls_token" in sd
    distilled = "dist_token" in sd
    if distilled and not class_token:
        raise ConvertError("found 'dist_token' but no 'cls_token': unsupported layout")
    reg = _shape(sd, "reg_token")[1] if "reg_token" in sd else 0
    prefix = int(class_token) + int(distilled) + reg
    layer_scale = "blocks.0.ls1.gamma" in sd
    fc_norm = "fc_norm.weight" in sd
    if fc_norm and "norm.weight" in sd:
        raise ConvertError("found both 'norm.weight' and 'fc_norm.weight'; timm has one or "
                           "the other")
    global_pool = "avg" if (fc_norm or not class_token) else "token"

    if "pos_embed" not in sd:
        raise ConvertError("missing tensor 'pos_embed' (only learned absolute position "
                           "embeddings are supported)")
    n = _shape(sd, "pos_embed")[1]
    g_with = math.isqrt(n - prefix) if n >= prefix else -1
    g_without = math.isqrt(n)
    ok_with = g_with >= 1 and g_with * g_with == n - prefix
    ok_without = prefix > 0 and g_without * g_without == n
    if ok_with and ok_without and img_size_hint in (g_with * p, g_without * p):
        ok_with = img_size_hint == g_with * p
        ok_without = not ok_with
    if ok_with and ok_without:
        raise ConvertError("pos_embed has %d tokens: both a %dx%d grid plus %d prefix tokens and a "
                           "%dx%d grid without them (no_embed_class) fit; pass --img-size %d or %d "
                           "to say which" % (n, g_with, g_with, prefix, g_without, g_without,
                                             g_with * p, g_without * p))
    if not (ok_with or ok_without):
        raise ConvertError("pos_embed has %d tokens: not a square patch grid with or without the "
                           "%d prefix token(s)" % (n, prefix))
    no_embed_class = not ok_with
    g = g_without if no_embed_class else g_with
    k = _shape(sd, "head.weight")[0] if "head.weight" in sd else 0
    return Arch(embed_dim=c, depth=depth, num_heads=num_heads, patch_size=p, img_size=g * p,
                mlp_hidden=hm, num_classes=k, class_token=class_token, distilled=distilled,
                reg_tokens=reg, no_embed_class=no_embed_class, layer_scale=layer_scale,
                global_pool=global_pool, fc_norm=fc_norm)


def validate(sd, arch):
    """Check `sd` against `arch`: every expected key present with its exact shape, no extras.

    Raises ConvertError listing up to 10 problems, each naming the tensor, the found shape and
    the expected shape.
    """
    exp = arch.expected_shapes()
    problems = []
    for key, shape in exp.items():
        if key not in sd:
            problems.append("missing tensor %r (expected shape %s)" % (key, list(shape)))
        elif tuple(sd[key].shape) != shape:
            problems.append("tensor %r has shape %s, expected %s"
                            % (key, list(sd[key].shape), list(shape)))
    for key in sorted(set(sd) - set(exp)):
        problems.append("unexpected tensor %r with shape %s (not part of %s)"
                        % (key, list(sd[key].shape), describe(arch)))
    if problems:
        more = "" if len(problems) <= 10 else "\n  ... and %d more" % (len(problems) - 10)
        raise ConvertError("state_dict does not match the architecture:\n  "
                           + "\n  ".join(problems[:10]) + more)


def describe(arch):
    """One-line human description, e.g. 'ViT C=192 D=12 H=3 p16 224px cls 1000 classes'."""
    parts = ["ViT C=%d D=%d H=%d mlp=%d p%d %dpx" % (arch.embed_dim, arch.depth, arch.num_heads,
                                                   arch.mlp_hidden, arch.patch_size, arch.img_size)]
    if arch.class_token:
        parts.append("cls")
    if arch.distilled:
        parts.append("dist")
    if arch.reg_tokens:
        parts.append("reg%d" % arch.reg_tokens)
    if arch.no_embed_class:
        parts.append("no_embed_class")
    if arch.layer_scale:
        parts.append("LayerScale")
    parts.append("pool=%s%s" % (arch.global_pool, "+fc_norm" if arch.fc_norm else ""))
    parts.append("%d classes" % arch.num_classes)
    return " ".join(parts)
