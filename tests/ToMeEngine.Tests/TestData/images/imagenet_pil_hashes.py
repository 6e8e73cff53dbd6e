#!/usr/bin/python3
"""Writes imagenet-samples.pil.json: what PIL + timm's eval transform make of every photo in shared/imagenet-samples.

For each file: the size, and SHA-256 (first 16 hex digits) of
  rgb          Image.open(f).convert('RGB') as H x W x 3 bytes;
  crop_S_C     the C x C center crop (torchvision's offsets) of the bicubic resize of the shorter side to S, H x W x 3 bytes;
  tensor_S_C   that crop as timm's float32 CHW tensor: x / 255, then (x - mean) / std with the model's mean/std
               (float32 throughout, the same operations as torch's ToTensor + Normalize), little-endian bytes.
S = 248 with mean = std = 0.5 (AugReg ViT, crop_pct 0.9) and S = 256 with ImageNet statistics (DeiT, crop_pct 0.875).

Run with Debian's python3-pil 9.4 (libjpeg-turbo 2.1.5) and python3-numpy:
  /usr/bin/python3 imagenet_pil_hashes.py ../../../../../shared/imagenet-samples > imagenet-samples.pil.json
"""
import glob
import hashlib
import json
import os
import sys

import numpy as np
from PIL import Image

CONFIGS = [
    (248, 224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    (256, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
]


def digest(data):
    return hashlib.sha256(data).hexdigest()[:16]


def main():
    folder = sys.argv[1]
    files = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.JPEG"))):
        im = Image.open(path).convert("RGB")
        w, h = im.size
        entry = {"size": [w, h], "rgb": digest(np.asarray(im).tobytes())}
        for scale, crop, mean, std in CONFIGS:
            size = (scale, int(scale * h / w)) if w <= h else (int(scale * w / h), scale)
            r = im.resize(size, Image.BICUBIC)
            left, top = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))
            c = np.asarray(r.crop((left, top, left + crop, top + crop)))
            entry[f"crop_{scale}_{crop}"] = digest(c.tobytes())
            x = np.ascontiguousarray(c.transpose(2, 0, 1), dtype=np.float32) / np.float32(255)
            x = (x - np.array(mean, dtype=np.float32).reshape(3, 1, 1)) / np.array(std, dtype=np.float32).reshape(3, 1, 1)
            entry[f"tensor_{scale}_{crop}"] = digest(x.astype("<f4").tobytes())
        files[os.path.basename(path)] = entry
    # One line per file keeps the diff of a regenerated file readable.
    print('{"generator": "imagenet_pil_hashes.py", "pil": "%s", "libjpeg_turbo": "2.1.5", "files": {' % Image.__version__)
    print(",\n".join(f"{json.dumps(name)}: {json.dumps(entry)}" for name, entry in files.items()))
    print("}}")


if __name__ == "__main__":
    main()
