#!/usr/bin/env python3
"""Convert ViT/DeiT checkpoints into timm's hub layout for ToMeEngine.

    python3 weights-converter/tome_convert.py INPUT -o OUTDIR [--arch NAME] [--num-classes N]
        [--dtype f32|f16|bf16] [--img-size S] [--labels FILE] [--force]

See README.md beside this file; `--help` lists every option.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tomeconv.convert import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
