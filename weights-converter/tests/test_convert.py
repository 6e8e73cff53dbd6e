"""Tests for the weights converter. Run from the repository root:

    /usr/bin/python3 -m unittest discover -s weights-converter/tests

Needs torch and numpy (Debian: python3-torch python3-numpy); without them every test is
skipped with a printed reason. The AugReg .npz test reads the real ViT-Ti from
../shared/models (skipped when that folder is absent).
"""
import contextlib
import io
import json
import os
import struct
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    HAVE_DEPS = True
    MISSING = ""
except ImportError as e:  # pragma: no cover - depends on the machine
    HAVE_DEPS = False
    MISSING = "torch/numpy not importable (%s); install python3-torch python3-numpy" % e
    print("SKIP weights-converter tests: " + MISSING, file=sys.stderr)

if HAVE_DEPS:
    from tomeconv import arch as A
    from tomeconv import safetensors_io as st
    from tomeconv.convert import convert, main, to_storage

SHARED_FIXTURES = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "fixtures"))
if not os.path.isdir(SHARED_FIXTURES):
    SHARED_FIXTURES = "/work/shared/fixtures"
SHARED_MODEL = os.path.normpath(os.path.join(
    HERE, "..", "..", "..", "shared", "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k"))
if not os.path.isdir(SHARED_MODEL):
    SHARED_MODEL = "/work/shared/models/vit_tiny_patch16_224.augreg_in21k_ft_in1k"


def random_state_dict(arch, seed=0):
    """Seeded random tensors with timm names and shapes for `arch` (float32)."""
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(*shape, generator=g) for k, shape in
            sorted(arch.expected_shapes().items())}


def tiny(**kw):
    """A small ViT-Ti-width model: 192 wide (3 heads inferable), 2 blocks, 32 px / patch 16."""
    a = dict(embed_dim=192, depth=2, num_heads=3, patch_size=16, img_size=32, mlp_hidden=768,
             num_classes=10)
    a.update(kw)
    return A.Arch(**a)


def quiet(fn, *args, **kw):
    """Run fn with stdout and stderr captured; return (result, stderr text)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        r = fn(*args, **kw)
    return r, err.getvalue()


@unittest.skipUnless(HAVE_DEPS, MISSING)
class SafetensorsTests(unittest.TestCase):
    def test_round_trip_layout(self):
        t = {"b": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.array([1, 2], np.int64),
             "c": np.zeros((0, 4), np.float32)}
        data = st.serialize(t, {"k": "v"})
        (n,) = struct.unpack("<Q", data[:8])
        self.assertEqual(n % 8, 0)
        raw = data[8:8 + n]
        self.assertTrue(raw.endswith(b"}") or raw.rstrip(b" ").endswith(b"}"))
        header = json.loads(raw)
        self.assertEqual(header["__metadata__"], {"k": "v"})
        names = [k for k in header if k != "__metadata__"]
        self.assertEqual(sorted(names), ["a", "b", "c"])
        self.assertEqual(header["a"], {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]})
        self.assertEqual(header["b"], {"dtype": "F32", "shape": [2, 3], "data_offsets": [16, 40]})
        self.assertEqual(header["c"]["data_offsets"], [40, 40])
        self.assertEqual(len(data), 8 + n + 40)
        self.assertEqual(data[8 + n + 16:8 + n + 20], struct.pack("<f", 0.0))
        back, meta = st.parse(data)
        self.assertEqual(meta, {"k": "v"})
        for k in t:
            np.testing.assert_array_equal(back[k], t[k])
            self.assertEqual(back[k].dtype, t[k].dtype)

    def test_f16_bits(self):
        x = np.array([1.0, -2.0, 65504.0, 2.0 ** -24, 0.0], np.float32)
        data = st.serialize(to_storage({"x": torch.from_numpy(x)}, "f16"))
        (n,) = struct.unpack("<Q", data[:8])
        self.assertEqual(json.loads(data[8:8 + n])["x"]["dtype"], "F16")
        bits = struct.unpack("<5H", data[8 + n:])
        self.assertEqual(bits, (0x3C00, 0xC000, 0x7BFF, 0x0001, 0x0000))

    def test_bf16_bits_round_to_nearest_even(self):
        words = [0x3F800000, 0x3F808000, 0x3F818000, 0x3F808001, 0xC0490FDB, 0x7F800000,
                 0x7FC00000, 0x00000001, 0x7F7FFFFF]
        x = np.array(words, np.uint32).view(np.float32)
        expect = [0x3F80, 0x3F80, 0x3F82, 0x3F81, 0xC049, 0x7F80, 0x7FC0, 0x0000, 0x7F80]
        self.assertEqual(st.float32_to_bf16_bits(x).tolist(), expect)
        # the converter's torch path and the numpy encoder agree, and both write BF16
        y = np.random.default_rng(1).standard_normal(1000).astype(np.float32)
        enc = to_storage({"y": torch.from_numpy(y)}, "bf16")["y"]
        self.assertEqual(enc.bits.tolist(), st.float32_to_bf16_bits(y).tolist())
        back, _ = st.parse(st.serialize({"y": enc}))
        self.assertIsInstance(back["y"], st.Bf16)
        np.testing.assert_array_equal(back["y"].bits, enc.bits)
        self.assertLess(np.max(np.abs(back["y"].to_float32() - y)), 0.02)

    def test_rejects_overlap(self):
        data = bytearray(st.serialize({"a": np.zeros(2, np.float32), "b": np.zeros(2, np.float32)}))
        (n,) = struct.unpack("<Q", data[:8])
        h = json.loads(data[8:8 + n])
        h["b"]["data_offsets"] = [4, 12]
        hj = json.dumps(h).encode()
        hj += b" " * ((-len(hj)) % 8)
        bad = struct.pack("<Q", len(hj)) + hj + bytes(data[8 + n:])
        with self.assertRaisesRegex(ValueError, "gap or overlap"):
            st.parse(bad)


@unittest.skipUnless(HAVE_DEPS, MISSING)
class ConvertTests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def save(self, obj, name="ckpt.pth"):
        path = os.path.join(self.dir, name)
        torch.save(obj, path)
        return path

    def run_convert(self, inp, **kw):
        out = os.path.join(self.dir, "out")
        cfg, err = quiet(convert, inp, out, force=True, **kw)
        tensors, meta = st.load_file(os.path.join(out, "model.safetensors"))
        with open(os.path.join(out, "config.json")) as f:
            self.assertEqual(json.load(f), cfg)
        return cfg, tensors, meta, err

    def assert_same(self, tensors, sd):
        self.assertEqual(sorted(tensors), sorted(sd))
        for k, v in sd.items():
            np.testing.assert_array_equal(tensors[k], v.numpy(), err_msg=k)

    def test_vit_inferred(self):
        sd = random_state_dict(tiny())
        cfg, t, meta, err = self.run_convert(self.save(sd))
        self.assert_same(t, sd)
        self.assertEqual(cfg["architecture"], "vit_tiny_patch16_224")
        self.assertIn("no registered timm model", err)
        self.assertEqual(cfg["model_args"]["depth"], 2)
        self.assertEqual(cfg["model_args"]["img_size"], 32)
        self.assertEqual((cfg["num_classes"], cfg["num_features"], cfg["global_pool"]),
                         (10, 192, "token"))
        p = cfg["pretrained_cfg"]
        self.assertEqual((p["mean"], p["std"], p["crop_pct"]), ([0.5] * 3, [0.5] * 3, 0.9))
        self.assertEqual(p["input_size"], [3, 32, 32])
        mc = json.loads(meta["config"])
        self.assertEqual((mc["embed_dim"], mc["depth"], mc["num_heads"], mc["img_size"]),
                         (192, 2, 3, 32))

    def test_exact_timm_name_and_deit_wrapper(self):
        arch = A.arch_from_name("deit_tiny_distilled_patch16_224")
        sd = random_state_dict(arch, seed=3)
        cfg, t, _, _ = self.run_convert(self.save({"model": sd, "epoch": 7}))
        self.assert_same(t, sd)
        self.assertEqual(cfg["architecture"], "deit_tiny_distilled_patch16_224")
        p = cfg["pretrained_cfg"]
        self.assertEqual(p["mean"], [0.485, 0.456, 0.406])
        self.assertEqual(p["std"], [0.229, 0.224, 0.225])
        self.assertEqual(p["crop_pct"], 0.875)
        self.assertEqual(p["classifier"], ["head", "head_dist"])

    def test_deit_wrapper_named_by_family(self):
        sd = random_state_dict(tiny(), seed=4)
        cfg, t, _, _ = self.run_convert(self.save({"model": sd}))
        self.assert_same(t, sd)
        self.assertTrue(cfg["architecture"].startswith("deit_tiny"), cfg["architecture"])
        self.assertEqual(cfg["pretrained_cfg"]["crop_pct"], 0.875)

    def test_distilled_small(self):
        sd = random_state_dict(tiny(distilled=True), seed=5)
        cfg, t, meta, _ = self.run_convert(self.save(sd), dtype="f16")
        self.assertEqual(t["dist_token"].dtype, np.float16)
        np.testing.assert_array_equal(t["head_dist.weight"], sd["head_dist.weight"].half().numpy())
        self.assertEqual(cfg["architecture"], "deit_tiny_distilled_patch16_224")
        self.assertTrue(json.loads(meta["config"])["distilled"])

    def test_avg_pool_fc_norm(self):
        sd = random_state_dict(tiny(global_pool="avg", fc_norm=True), seed=6)
        self.assertNotIn("norm.weight", sd)
        cfg, t, _, _ = self.run_convert(self.save(sd))
        self.assert_same(t, sd)
        self.assertEqual(cfg["global_pool"], "avg")
        self.assertTrue(cfg["model_args"]["fc_norm"])
        self.assertEqual(cfg["pretrained_cfg"]["mean"], [0.485, 0.456, 0.406])

    def test_no_class_token(self):
        sd = random_state_dict(tiny(class_token=False, global_pool="avg"), seed=7)
        cfg, t, _, _ = self.run_convert(self.save(sd))
        self.assert_same(t, sd)
        self.assertEqual(cfg["model_args"]["class_token"], False)
        self.assertEqual(cfg["model_args"]["fc_norm"], False)
        self.assertEqual(t["pos_embed"].shape, (1, 4, 192))

    def test_layer_scale_deit3(self):
        arch = tiny(layer_scale=True, no_embed_class=True, embed_dim=384, num_heads=6,
                    mlp_hidden=1536)
        sd = random_state_dict(arch, seed=8)
        cfg, t, _, _ = self.run_convert(self.save(sd))
        self.assert_same(t, sd)
        self.assertIn("blocks.1.ls2.gamma", t)
        self.assertTrue(cfg["architecture"].startswith("deit3_"), cfg["architecture"])
        self.assertEqual(cfg["model_args"]["init_values"], 1e-5)
        self.assertTrue(cfg["model_args"]["no_embed_class"])

    def test_reg_tokens(self):
        for no_embed in (False, True):
            arch = tiny(reg_tokens=4, no_embed_class=no_embed, img_size=64)
            sd = random_state_dict(arch, seed=9)
            cfg, t, _, _ = self.run_convert(self.save(sd))
            self.assert_same(t, sd)
            self.assertEqual(cfg["model_args"]["reg_tokens"], 4)
            self.assertEqual(cfg["model_args"].get("no_embed_class", False), no_embed)
            self.assertEqual(t["pos_embed"].shape[1], 16 + (0 if no_embed else 5))

    def test_ambiguous_pos_embed(self):
        # 9 tokens = 2x2 grid + 5 prefix (cls + 4 reg), or a 3x3 grid with no_embed_class
        sd = random_state_dict(tiny(reg_tokens=4, img_size=32), seed=18)
        path = self.save(sd)
        self.assert_refused(r"pos_embed has 9 tokens: both a 2x2 grid plus 5 prefix tokens and a "
                            r"3x3 grid .*--img-size 32 or 48", path)
        cfg, t, _, _ = self.run_convert(path, img_size=32)
        self.assert_same(t, sd)
        self.assertNotIn("no_embed_class", cfg["model_args"])
        cfg, t, _, _ = self.run_convert(path, img_size=48)
        self.assertTrue(cfg["model_args"]["no_embed_class"])

    def test_deit3_official_gamma_names(self):
        arch = tiny(layer_scale=True, no_embed_class=True, embed_dim=384, num_heads=6,
                    mlp_hidden=1536)
        sd = random_state_dict(arch, seed=19)
        raw = {k.replace("ls1.gamma", "gamma_1").replace("ls2.gamma", "gamma_2"): v
               for k, v in sd.items()}
        self.assertIn("blocks.0.gamma_1", raw)
        cfg, t, _, _ = self.run_convert(self.save({"model": raw}))
        self.assert_same(t, sd)

    def test_dinov2_registers(self):
        # facebookresearch/dinov2 layout: register_tokens, pos_embed over cls + grid, mask_token
        arch = tiny(reg_tokens=4, layer_scale=True, no_embed_class=True, patch_size=14,
                    img_size=28, num_classes=0)
        sd = random_state_dict(arch, seed=20)
        raw = dict(sd)
        raw["register_tokens"] = raw.pop("reg_token")
        raw["mask_token"] = torch.zeros(1, 192)
        cls_pos = torch.randn(1, 1, 192, generator=torch.Generator().manual_seed(2))
        raw["pos_embed"] = torch.cat([cls_pos, sd["pos_embed"]], 1)   # [1, 1 + 2*2, C]
        cfg, t, _, err = self.run_convert(self.save(raw))
        self.assertIn("mask_token", err)
        np.testing.assert_array_equal(t["reg_token"], sd["reg_token"].numpy())
        np.testing.assert_array_equal(t["cls_token"], (sd["cls_token"] + cls_pos).numpy())
        np.testing.assert_array_equal(t["pos_embed"], sd["pos_embed"].numpy())
        self.assertTrue(cfg["model_args"]["no_embed_class"])
        self.assertEqual(cfg["model_args"]["reg_tokens"], 4)
        self.assertEqual(cfg["num_classes"], 0)
        self.assertEqual(cfg["pretrained_cfg"]["mean"], [0.485, 0.456, 0.406])
        self.assertTrue(cfg["architecture"].endswith("reg4_dinov2"), cfg["architecture"])

    def test_linear_patch_embed(self):
        sd = random_state_dict(tiny(), seed=21)
        raw = dict(sd)
        raw["patch_embed.proj.weight"] = sd["patch_embed.proj.weight"].reshape(192, -1)
        cfg, t, _, _ = self.run_convert(self.save(raw))
        self.assert_same(t, sd)

    def test_timm_model_name_input(self):
        # a stand-in `timm` module: the optional path needs only create_model + pretrained_cfg
        import types
        sd = random_state_dict(tiny(), seed=22)

        class Model:
            pretrained_cfg = {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6], "crop_pct": 0.95,
                              "tag": "test_tag"}

            def state_dict(self):
                return sd

        fake = types.ModuleType("timm")
        fake.create_model = lambda name, pretrained=False: Model()
        saved = sys.modules.get("timm")
        sys.modules["timm"] = fake
        try:
            cfg, t, _, _ = self.run_convert("vit_tiny_patch16_224.test_tag_but_not_a_file_x")
        except A.ConvertError as e:
            self.assertIn("depth: checkpoint has 2", str(e))
        finally:
            if saved is None:
                del sys.modules["timm"]
            else:
                sys.modules["timm"] = saved
        sys.modules["timm"] = fake
        try:
            cfg, t, _, _ = self.run_convert("my_vit_tiny_variant")
        finally:
            if saved is None:
                del sys.modules["timm"]
            else:
                sys.modules["timm"] = saved
        self.assert_same(t, sd)
        self.assertEqual(cfg["architecture"], "my_vit_tiny_variant")
        p = cfg["pretrained_cfg"]
        self.assertEqual((p["mean"], p["std"], p["crop_pct"], p["tag"]),
                         ([0.1, 0.2, 0.3], [0.4, 0.5, 0.6], 0.95, "test_tag"))

    def test_module_prefix_and_safetensors_input(self):
        sd = random_state_dict(tiny(), seed=10)
        path = self.save({"state_dict": {"module." + k: v for k, v in sd.items()}})
        cfg, t, _, _ = self.run_convert(path, dtype="bf16")
        self.assertIsInstance(t["pos_embed"], st.Bf16)
        # a converted file converts again (bf16 -> f32 widening is exact)
        src = os.path.join(self.dir, "again.safetensors")
        os.replace(os.path.join(self.dir, "out", "model.safetensors"), src)
        _, t2, _, _ = self.run_convert(src)
        np.testing.assert_array_equal(t2["pos_embed"], t["pos_embed"].to_float32())

    def test_pos_embed_resample_matches_interpolate(self):
        sd = random_state_dict(tiny(), seed=11)
        cfg, t, _, err = self.run_convert(self.save(sd), img_size=80)
        pe = sd["pos_embed"]
        grid = pe[:, 1:].reshape(1, 2, 2, 192).permute(0, 3, 1, 2)
        direct = F.interpolate(grid, size=(5, 5), mode="bicubic", align_corners=False)
        direct = torch.cat([pe[:, :1], direct.permute(0, 2, 3, 1).reshape(1, 25, 192)], 1)
        np.testing.assert_array_equal(t["pos_embed"], direct.numpy())
        self.assertEqual(cfg["pretrained_cfg"]["input_size"], [3, 80, 80])
        self.assertEqual(cfg["model_args"]["img_size"], 80)
        self.assertIn("resampled pos_embed from 2x2 to 5x5", err)

    def test_npz_augreg_round_trip(self):
        if not os.path.isfile(os.path.join(SHARED_MODEL, "model.safetensors")):
            self.skipTest("shared ViT-Ti not found at %s" % SHARED_MODEL)
        ref, _ = st.load_file(os.path.join(SHARED_MODEL, "model.safetensors"))
        path = os.path.join(self.dir, "Ti_16-augreg.npz")
        np.savez(path, **timm_to_npz(ref, heads=3))
        labels = os.path.join(SHARED_MODEL, "config.json")
        cfg, t, _, _ = self.run_convert(path, labels=labels)
        self.assertEqual(sorted(t), sorted(ref))
        for k in ref:
            np.testing.assert_array_equal(t[k], ref[k], err_msg=k)
        with open(labels) as f:
            shared_cfg = json.load(f)
        for key in ("architecture", "num_classes", "num_features", "global_pool", "label_names"):
            self.assertEqual(cfg[key], shared_cfg[key], key)
        for key in ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std",
                    "num_classes", "first_conv", "classifier"):
            self.assertEqual(cfg["pretrained_cfg"][key], shared_cfg["pretrained_cfg"][key], key)

    def test_engine_fixtures_convert_unchanged(self):
        names = ("vit_t4", "deit_t4_distilled", "vit_p14_d3", "vit_avg_d3")
        paths = [os.path.join(SHARED_FIXTURES, n + ".safetensors") for n in names]
        if not all(os.path.isfile(p) for p in paths):
            self.skipTest("shared fixtures not found at %s" % SHARED_FIXTURES)
        for path in paths:
            ref, ref_meta = st.load_file(path)
            cfg, t, meta, _ = self.run_convert(path)  # vit_p14_d3: 128 wide, heads from metadata
            self.assertEqual(sorted(t), sorted(ref))
            for k in ref:
                np.testing.assert_array_equal(t[k], ref[k], err_msg=k)
            want, got = json.loads(ref_meta["config"]), json.loads(meta["config"])
            self.assertEqual({k: got.get(k) for k in want}, want, path)
            self.assertEqual(cfg["model_args"]["num_heads"], want["num_heads"])
            self.assertEqual(cfg["pretrained_cfg"]["mean"], want["mean"])

    # --- refusals -----------------------------------------------------------------------

    def assert_refused(self, pattern, inp, **kw):
        with self.assertRaisesRegex(A.ConvertError, pattern):
            quiet(convert, inp, os.path.join(self.dir, "out"), force=True, **kw)

    def test_nonstandard_width_needs_heads(self):
        arch = tiny(embed_dim=64, num_heads=2, mlp_hidden=256)
        sd = random_state_dict(arch, seed=12)
        path = self.save(sd)
        self.assert_refused(r"number of attention heads: embed_dim 64 .*--num-heads", path)
        cfg, t, _, _ = self.run_convert(path, num_heads=2)
        self.assert_same(t, sd)
        self.assertEqual(cfg["model_args"]["num_heads"], 2)

    def test_wrong_shape_named(self):
        sd = random_state_dict(tiny(), seed=13)
        sd["blocks.1.mlp.fc2.weight"] = torch.zeros(192, 700)
        self.assert_refused(r"'blocks\.1\.mlp\.fc2\.weight' has shape \[192, 700\], "
                            r"expected \[192, 768\]", self.save(sd))

    def test_missing_and_unexpected(self):
        sd = random_state_dict(tiny(), seed=14)
        del sd["blocks.0.attn.qkv.bias"]
        sd["pre_logits.fc.weight"] = torch.zeros(3, 3)
        path = self.save(sd)
        self.assert_refused(r"missing tensor 'blocks\.0\.attn\.qkv\.bias' "
                            r"\(expected shape \[576\]\)", path)
        self.assert_refused(r"unexpected tensor 'pre_logits\.fc\.weight'", path)

    def test_arch_mismatch_and_options(self):
        sd = random_state_dict(tiny(), seed=15)
        path = self.save(sd)
        self.assert_refused(r"depth: checkpoint has 2, vit_tiny_patch16_224 has 12", path,
                            arch_name="vit_tiny_patch16_224")
        self.assert_refused(r"unknown architecture 'vit_nope'", path, arch_name="vit_nope")
        self.assert_refused(r"--num-classes 5 but head.weight has 10 rows", path, num_classes=5)
        self.assert_refused(r"not a multiple of the patch size 16", path, img_size=100)
        labels = os.path.join(self.dir, "labels.txt")
        with open(labels, "w") as f:
            f.write("a\nb\n")
        self.assert_refused(r"has 2 names but the model has 10 classes", path, labels=labels)
        cfg, t, _, _ = self.run_convert(path, num_classes=0)
        self.assertNotIn("head.weight", t)
        self.assertEqual(cfg["num_classes"], 0)

    def test_cli_refuses_existing_output_and_reports(self):
        sd = random_state_dict(tiny(), seed=16)
        path = self.save(sd)
        out = os.path.join(self.dir, "cli")
        rc, _ = quiet(main, [path, "-o", out])
        self.assertEqual(rc, 0)
        rc, err = quiet(main, [path, "-o", out])
        self.assertEqual(rc, 2)
        self.assertIn("--force", err)
        rc, err = quiet(main, [os.path.join(self.dir, "nope.pth"), "-o", out, "--force"])
        self.assertEqual(rc, 2)
        self.assertIn("error:", err)
        try:
            import timm  # noqa: F401
        except ImportError:
            self.assertIn("is not a file, and timm is not installed", err)
        junk = os.path.join(self.dir, "junk.pth")
        with open(junk, "wb") as f:
            f.write(b"not a checkpoint")
        rc, err = quiet(main, [junk, "-o", out, "--force"])
        self.assertEqual(rc, 2)
        self.assertIn("cannot be read as a torch checkpoint", err)

    def test_weights_only_refusal(self):
        import argparse
        sd = random_state_dict(tiny(), seed=17)
        path = self.save({"model": sd, "args": argparse.Namespace(lr=1)})
        self.assert_refused(r"weights_only=True.*--trust-pickle", path)
        cfg, t, _, _ = self.run_convert(path, trust_pickle=True)
        self.assert_same(t, sd)


def timm_to_npz(sd, heads):
    """Inverse of timm's _load_weights mapping: timm-named arrays -> AugReg .npz arrays."""
    out = {}
    c = sd["patch_embed.proj.weight"].shape[0]
    dh = c // heads
    out["embedding/kernel"] = sd["patch_embed.proj.weight"].transpose(2, 3, 1, 0)  # OIHW -> HWIO
    out["embedding/bias"] = sd["patch_embed.proj.bias"]
    out["cls"] = sd["cls_token"]
    out["Transformer/posembed_input/pos_embedding"] = sd["pos_embed"]
    out["Transformer/encoder_norm/scale"] = sd["norm.weight"]
    out["Transformer/encoder_norm/bias"] = sd["norm.bias"]
    out["head/kernel"] = sd["head.weight"].T
    out["head/bias"] = sd["head.bias"]
    i = 0
    while "blocks.%d.norm1.weight" % i in sd:
        b, bp = "blocks.%d." % i, "Transformer/encoderblock_%d/" % i
        mp = bp + "MultiHeadDotProductAttention_1/"
        qkv_w = sd[b + "attn.qkv.weight"].reshape(3, c, c)
        qkv_b = sd[b + "attn.qkv.bias"].reshape(3, heads, dh)
        for j, n in enumerate(("query", "key", "value")):
            out[mp + n + "/kernel"] = qkv_w[j].T.reshape(c, heads, dh)
            out[mp + n + "/bias"] = qkv_b[j]
        out[mp + "out/kernel"] = sd[b + "attn.proj.weight"].T.reshape(heads, dh, c)
        out[mp + "out/bias"] = sd[b + "attn.proj.bias"]
        out[bp + "LayerNorm_0/scale"] = sd[b + "norm1.weight"]
        out[bp + "LayerNorm_0/bias"] = sd[b + "norm1.bias"]
        out[bp + "LayerNorm_2/scale"] = sd[b + "norm2.weight"]
        out[bp + "LayerNorm_2/bias"] = sd[b + "norm2.bias"]
        for r in range(2):
            out[bp + "MlpBlock_3/Dense_%d/kernel" % r] = sd[b + "mlp.fc%d.weight" % (r + 1)].T
            out[bp + "MlpBlock_3/Dense_%d/bias" % r] = sd[b + "mlp.fc%d.bias" % (r + 1)]
        i += 1
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


if __name__ == "__main__":
    unittest.main()
