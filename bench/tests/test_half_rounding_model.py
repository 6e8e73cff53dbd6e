"""bench/half_rounding_model.py: its float64 ViT reproduces timm's float64 logits of the golden fixtures, and each
half-precision policy rounds (errors of a half rounding's size, autocast's above the engine's).

    /usr/bin/python3 -m unittest discover -s bench/tests
"""
import os
import sys
import unittest

BENCH = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, BENCH)
FIXTURES = os.path.join(BENCH, "..", "tests", "ToMeEngine.Tests", "TestData", "fixtures")
MODELS = ["deit_t4_distilled", "vit_p14_d3"]

try:
    import numpy  # noqa: F401
    import torch  # noqa: F401
except ImportError:  # the script would exit naming the package; here the tests say why nothing ran
    model = None
else:
    import half_rounding_model as model


@unittest.skipIf(model is None, "needs numpy and torch (Debian's python3-numpy, python3-torch)")
class HalfRoundingModelTests(unittest.TestCase):
    def test_unrounded_model_is_timms_float64_forward(self):
        for name in MODELS:
            largest, _, logit = model.errors(FIXTURES, name, "engine", "none")
            self.assertLess(largest, 1e-9, name)
            self.assertGreater(logit, 1.0, name)

    def test_half_policies_round_and_autocast_rounds_more(self):
        for name in MODELS:
            for precision, low, high in (("bf16", 1e-3, 5e-2), ("fp16", 1e-4, 5e-3)):
                engine = model.errors(FIXTURES, name, "engine", precision)
                autocast = model.errors(FIXTURES, name, "autocast", precision)
                self.assertTrue(low < engine[0] < high, (name, precision, engine))
                self.assertGreater(autocast[1], engine[1], (name, precision, engine, autocast))


if __name__ == "__main__":
    unittest.main()
