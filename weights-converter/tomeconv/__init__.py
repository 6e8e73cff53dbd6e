"""tomeconv: ViT/DeiT checkpoints -> timm hub layout (model.safetensors + config.json).

Modules: safetensors_io (numpy-only reader/writer), arch (architecture inference, naming,
validation), sources (input readers incl. AugReg .npz mapping), posembed (pos-embed resampling),
hubconfig (config.json), convert (pipeline + CLI).
"""
