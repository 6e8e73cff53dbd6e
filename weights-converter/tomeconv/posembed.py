"""Absolute position embedding resampling with timm's `resample_abs_pos_embed` semantics."""
import math

import torch
import torch.nn.functional as F


def resample_abs_pos_embed(posemb, new_size, num_prefix_tokens=1, interpolation="bicubic",
                           antialias=False):
    """Resample a ViT position embedding to a new patch grid.

    posemb: [1, P + Gh*Gw, C] with the P prefix tokens (class/distillation/register) first, or
    [1, Gh*Gw, C] with num_prefix_tokens=0 (no_embed_class models). The old grid must be square.
    new_size: (new_h, new_w) in patches. Returns [1, P + new_h*new_w, C] in posemb's dtype.

    Like timm: prefix tokens are kept out and copied unchanged; the grid is reshaped to
    [1, C, Gh, Gw], interpolated in float32 with F.interpolate(mode=interpolation,
    align_corners=False, antialias=antialias), and reshaped back. antialias only changes
    downsampling (timm's checkpoint_filter_fn passes antialias=True in recent releases; this
    converter defaults to False, the plain bicubic of torch and of older timm releases).
    """
    new_h, new_w = new_size
    n = posemb.shape[1] - num_prefix_tokens
    old = math.isqrt(n)
    if old * old != n:
        raise ValueError("position embedding has %d grid tokens, not a square grid" % n)
    if (old, old) == (new_h, new_w):
        return posemb
    prefix, grid = posemb[:, :num_prefix_tokens], posemb[:, num_prefix_tokens:]
    dim = posemb.shape[-1]
    orig_dtype = posemb.dtype
    grid = grid.float().reshape(1, old, old, dim).permute(0, 3, 1, 2)
    kw = {"antialias": True} if antialias else {}
    grid = F.interpolate(grid, size=(new_h, new_w), mode=interpolation, align_corners=False, **kw)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_h * new_w, dim).to(orig_dtype)
    return torch.cat([prefix, grid], dim=1)
