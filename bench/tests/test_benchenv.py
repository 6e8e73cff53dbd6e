"""The bench scripts' environment checks (bench/benchenv.py): a missing module is named with the interpreter to use,
and a result names the commit of the build it timed.

    /usr/bin/python3 -m unittest discover -s bench/tests
"""
import importlib.util
import os
import re
import subprocess
import sys
import unittest

BENCH = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, BENCH)

import benchenv  # noqa: E402

# Every bench script that imports numpy, torch, onnx or PIL, with the arguments that reach each import.
SCRIPTS = [
    ("compare_ort.py", ["--help"], "numpy"),
    ("accuracy_ort.py", ["--help"], "numpy"),
    ("decode_vs_pil.py", ["--help"], "numpy"),
    ("decode_vs_pil.py", ["--help"], "PIL"),
    ("torch_vit_baseline.py", ["--help"], "numpy"),
    ("torch_vit_baseline.py", ["--help"], "torch"),
    ("torch_gpu_baseline.py", ["--help"], "torch"),
    ("half_rounding_model.py", ["--help"], "numpy"),
    ("half_rounding_model.py", ["--help"], "torch"),
    ("ort/export_onnx.py", ["--help"], "numpy"),
    ("ort/export_onnx.py", ["quantize", "absent.onnx", "out.onnx"], "onnx"),
    ("ort/export_onnx.py", ["export", "absent-model", "out.onnx"], "torch"),
]


MISSING_HERE = {m for m in ("numpy", "torch", "onnx", "PIL") if importlib.util.find_spec(m) is None}


def run_without(script, args, module):
    """Runs a bench script as `python3 SCRIPT ARGS` would, with `module` made unimportable."""
    path = os.path.join(BENCH, script)
    code = (f"import runpy, sys; sys.modules[{module!r}] = None; sys.path.insert(0, {os.path.dirname(path)!r}); "
            f"sys.argv = [{path!r}, *{args!r}]; runpy.run_path({path!r}, run_name='__main__')")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=BENCH)


class MissingModules(unittest.TestCase):
    def test_every_script_names_the_missing_module_and_the_interpreter(self):
        for script, args, module in SCRIPTS:
            with self.subTest(script=script, module=module):
                result = run_without(script, args, module)
                self.assertNotEqual(result.returncode, 0, result.stdout)
                self.assertNotIn("Traceback", result.stderr)
                named = re.search(r"needs the Python modules? (.+?), which ", result.stderr)
                self.assertIsNotNone(named, result.stderr)
                named = set(named.group(1).split(", "))
                # Where this interpreter lacks another module a script imports first, that one may be named instead.
                self.assertTrue(module in named or named & MISSING_HERE, result.stderr)
                self.assertIn(sys.executable, result.stderr)
                self.assertTrue(benchenv.DEBIAN_PYTHON in result.stderr or "apt-get install" in result.stderr, result.stderr)

    def test_every_script_that_imports_a_third_party_module_is_covered(self):
        covered = {script for script, _, _ in SCRIPTS}
        for folder in ("", "ort"):
            for name in sorted(os.listdir(os.path.join(BENCH, folder))):
                if not name.endswith(".py") or name == "benchenv.py":
                    continue
                with open(os.path.join(BENCH, folder, name)) as f:
                    text = f.read()
                if any(f"import {m}" in text for m in ("numpy", "torch", "onnx", "PIL")):
                    self.assertIn(os.path.join(folder, name) if folder else name, covered)

    def test_present_modules_pass(self):
        benchenv.require("os", "json")


class BuildCommit(unittest.TestCase):
    STAMPED = "0.1.0+c65bf31e71653b7d0583a0c9b29f31519231f588\n"

    def test_a_given_build_names_its_own_commit_not_the_checkouts(self):
        label = benchenv.commit_label(self.STAMPED, tome_given=True, head="746a80b")
        self.assertTrue(label.startswith("c65bf31"), label)
        self.assertNotIn("746a80b", label)

    def test_a_given_build_without_a_stamp_is_unknown(self):
        self.assertEqual(benchenv.commit_label("0.1.0\n", tome_given=True, head="746a80b"), "unknown, --tome given")
        self.assertEqual(benchenv.commit_label(None, tome_given=True, head="746a80b"), "unknown, --tome given")

    def test_the_checkouts_build(self):
        self.assertEqual(benchenv.commit_label(self.STAMPED, False, "c65bf31"), "c65bf31")
        self.assertEqual(benchenv.commit_label(self.STAMPED, False, "c65bf31", dirty=True), "c65bf31 + uncommitted changes")
        self.assertEqual(benchenv.commit_label(self.STAMPED, False, "1234567"), "c65bf31 (the build; the checkout is at 1234567)")
        self.assertEqual(benchenv.commit_label("0.1.0", False, "1234567", dirty=True), "1234567 + uncommitted changes")


if __name__ == "__main__":
    unittest.main()
