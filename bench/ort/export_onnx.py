"""Models for the ONNX Runtime comparison (bench/compare_ort.py), made with Debian's python3-torch and python3-onnx.

    export_onnx.py random ARCH OUT_DIR [--seed 0]
        seeded random weights for a timm ViT (vit_tiny/small/base_patch16_224) as a model folder both engines load:
        config.json + model.safetensors with timm's key names
    export_onnx.py export MODEL_DIR OUT.onnx [--r R --batch B]
        torch.onnx.export (opset 17) of bench/torch_vit_baseline.py's plain-torch ViT with MODEL_DIR's weights: the
        input is "images" [batch, 3, S, S], the output "logits". r = 0: batch is a dynamic axis. r > 0: timm + the
        official ToMe at that r (bipartite merging, proportional attention), traced at --batch as a static graph.
    export_onnx.py quantize IN.onnx OUT.onnx [--per-column]
        every Linear (MatMul + Add, or Gemm, with constant weights) becomes one com.microsoft DynamicQuantizeMatMul:
        int8 symmetric weights with one scale per tensor (--per-column: per output column), activations quantized
        per call by ONNX Runtime (uint8, asymmetric) — what onnxruntime's quantize_dynamic produces once fused.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "weights-converter"))

import benchenv  # noqa: E402

benchenv.require("numpy")
import numpy as np  # noqa: E402

# timm name -> (embed_dim, depth, heads); patch 16, 224 px, mlp_ratio 4, 1000 classes.
ARCHS = {
    "vit_tiny_patch16_224": (192, 12, 3),
    "vit_small_patch16_224": (384, 12, 6),
    "vit_base_patch16_224": (768, 12, 12),
}


def random_model(arch, out_dir, seed):
    from tomeconv.safetensors_io import save_file

    if arch not in ARCHS:
        sys.exit(f"unknown architecture {arch} (expected one of {', '.join(ARCHS)})")
    C, depth, _ = ARCHS[arch]
    hidden, tokens, classes = 4 * C, 197, 1000
    shapes = {"cls_token": (1, 1, C), "pos_embed": (1, tokens, C), "patch_embed.proj.weight": (C, 3, 16, 16),
              "patch_embed.proj.bias": (C,), "norm.weight": (C,), "norm.bias": (C,),
              "head.weight": (classes, C), "head.bias": (classes,)}
    for i in range(depth):
        p = f"blocks.{i}."
        shapes.update({p + "norm1.weight": (C,), p + "norm1.bias": (C,), p + "attn.qkv.weight": (3 * C, C),
                       p + "attn.qkv.bias": (3 * C,), p + "attn.proj.weight": (C, C), p + "attn.proj.bias": (C,),
                       p + "norm2.weight": (C,), p + "norm2.bias": (C,), p + "mlp.fc1.weight": (hidden, C),
                       p + "mlp.fc1.bias": (hidden,), p + "mlp.fc2.weight": (C, hidden), p + "mlp.fc2.bias": (C,)})
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in sorted(shapes.items()):
        u = rng.uniform(-1, 1, size=shape).astype(np.float32)
        gain = name.endswith(("norm1.weight", "norm2.weight")) or name == "norm.weight"
        # Fan-in scaled weights keep activations O(1) through the depth, as the engine's own random weights do.
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        if gain:
            tensors[name] = 1 + 0.02 * u
        elif name.endswith(".weight"):
            tensors[name] = u * np.float32(1.7 / np.sqrt(fan_in))
        else:
            tensors[name] = 0.02 * u
    os.makedirs(out_dir, exist_ok=True)
    save_file(tensors, os.path.join(out_dir, "model.safetensors"))
    config = {"architecture": arch, "num_classes": classes, "num_features": C, "global_pool": "token",
              "pretrained_cfg": {"input_size": [3, 224, 224], "interpolation": "bicubic", "crop_pct": 0.9,
                                 "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "num_classes": classes}}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def export(model_dir, out, r, batch):
    benchenv.require("torch")
    import torch
    import torch_vit_baseline as tv

    w = tv.load_safetensors(os.path.join(model_dir, "model.safetensors"))
    shape = tv.model_shape(w)
    with open(os.path.join(model_dir, "config.json")) as f:
        size = json.load(f)["pretrained_cfg"]["input_size"][-1]

    class Vit(torch.nn.Module):
        def __init__(self):
            super().__init__()
            # Registered so the weights become named initializers rather than anonymous constants.
            for name, t in w.items():
                self.register_buffer(name.replace(".", "__"), t)

        def forward(self, x):
            weights = {name: getattr(self, name.replace(".", "__")) for name in w}
            return tv.forward(weights, x, shape, r)

    model = Vit().eval()
    x = torch.zeros(batch, 3, size, size)
    dynamic = None if r > 0 else {"images": {0: "batch"}, "logits": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(model, (x,), out, opset_version=17, input_names=["images"], output_names=["logits"],
                          dynamic_axes=dynamic, do_constant_folding=True)


def quantize(src, out, per_column):
    benchenv.require("onnx")
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(src)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    # One list of the node objects: the bookkeeping below keys on their identity.
    all_nodes = list(graph.node)
    consumers = {}
    for node in all_nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def const(name):
        return numpy_helper.to_array(inits[name]) if name in inits else None

    def quantized(weight, tag):
        # weight: [K, N]. Symmetric int8 (zero point 0), so no zero point input is needed.
        amax = np.abs(weight).max(axis=0) if per_column else np.abs(weight).max()
        scale = (np.maximum(amax, 1e-12) / 127).astype(np.float32)
        q = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
        names = (f"{tag}_quantized", f"{tag}_scale")
        graph.initializer.extend([numpy_helper.from_array(q, names[0]), numpy_helper.from_array(np.asarray(scale), names[1])])
        return names

    removed, added, count = set(), [], 0
    for node in all_nodes:
        if node.op_type == "MatMul" and (weight := const(node.input[1])) is not None and weight.ndim == 2:
            # A Linear on 3-D activations exports as MatMul(x, Wᵀ) + Add(b): fold the bias in when it is there.
            users = consumers.get(node.output[0], [])
            add = users[0] if len(users) == 1 and users[0].op_type == "Add" else None
            bias = None
            if add is not None:
                other = [n for n in add.input if n != node.output[0]]
                if len(other) == 1 and (b := const(other[0])) is not None and b.shape == (weight.shape[1],):
                    bias = other[0]
            out_name = add.output[0] if bias is not None else node.output[0]
            qw, scale = quantized(weight, node.input[1])
            inputs = [node.input[0], qw, scale, "", bias] if bias is not None else [node.input[0], qw, scale]
            added.append((node, helper.make_node("DynamicQuantizeMatMul", inputs, [out_name], name=node.name + "_int8", domain="com.microsoft")))
            removed.add(id(node))
            if bias is not None:
                removed.add(id(add))
            count += 1
        elif node.op_type == "Gemm" and (weight := const(node.input[1])) is not None:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                continue
            if attrs.get("transB", 0):
                weight = weight.T
            qw, scale = quantized(np.ascontiguousarray(weight), node.input[1])
            inputs = [node.input[0], qw, scale, "", node.input[2]] if len(node.input) > 2 else [node.input[0], qw, scale]
            added.append((node, helper.make_node("DynamicQuantizeMatMul", inputs, list(node.output), name=node.name + "_int8", domain="com.microsoft")))
            removed.add(id(node))
            count += 1
    replacement = {id(old): new for old, new in added}
    nodes = [replacement.get(id(n), n) for n in all_nodes if id(n) not in removed or id(n) in replacement]
    nodes = [onnx.NodeProto.FromString(n.SerializeToString()) for n in nodes]  # detached before the field is cleared
    del graph.node[:]
    graph.node.extend(nodes)
    # Drop the float weights nothing reads any more.
    used = {name for n in graph.node for name in n.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.checker.check_model(model)
    onnx.save(model, out)
    print(f"{out}: {count} Linear layers as DynamicQuantizeMatMul ({'per-column' if per_column else 'per-tensor'} weight scales)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("random")
    p.add_argument("arch")
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("export")
    p.add_argument("model_dir")
    p.add_argument("out")
    p.add_argument("--r", type=int, default=0)
    p.add_argument("--batch", type=int, default=1)
    p = sub.add_parser("quantize")
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--per-column", action="store_true")
    args = ap.parse_args()
    if args.command == "random":
        random_model(args.arch, args.out_dir, args.seed)
    elif args.command == "export":
        export(args.model_dir, args.out, args.r, args.batch)
    else:
        quantize(args.src, args.out, args.per_column)


if __name__ == "__main__":
    main()
