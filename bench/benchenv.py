"""What a bench script needs from its environment: third-party Python modules, and the commit of the build it times.

The bench scripts run on Debian's Python (/usr/bin/python3, with python3-numpy, python3-torch, python3-onnx,
python3-pil); another python3 earlier on PATH may lack them. `require` names what is missing and the interpreter to use
instead of ending in an ImportError traceback. `build_commit` reads the commit a tome.dll was built from out of its
informational version (the SDK stamps it "0.1.0+<full sha>"), so a result names the build it timed, not the checkout.
"""
import importlib
import os
import re
import subprocess
import sys

DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_PACKAGES = {"numpy": "python3-numpy", "torch": "python3-torch", "onnx": "python3-onnx", "PIL": "python3-pil"}


def require(*modules):
    """Imports each module, or exits naming the missing ones, this interpreter and the one (or the packages) to use."""
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if not missing:
        return
    script = os.path.relpath(os.path.abspath(sys.argv[0])) if sys.argv and sys.argv[0] else "this script"
    names = ", ".join(missing)
    packages = " ".join(DEBIAN_PACKAGES.get(m, "python3-" + m.lower()) for m in missing)
    here = os.path.realpath(sys.executable or "python3")
    if here == os.path.realpath(DEBIAN_PYTHON):
        hint = f"install Debian's packages: apt-get install {packages}"
    else:
        hint = f"run it with {DEBIAN_PYTHON} {script} (Debian's Python; apt-get install {packages} if it lacks them too)"
    sys.exit(f"{script} needs the Python module{'s' if len(missing) > 1 else ''} {names}, "
             f"which {sys.executable} cannot import: {hint}")


def commit_from_version(text):
    """The short commit in a `tome --version` output ("0.1.0+<sha>"), or None when the build was not stamped."""
    match = re.search(r"\+([0-9a-fA-F]{7,40})\b", text or "")
    return match.group(1)[:7].lower() if match else None


def commit_label(version_text, tome_given, head=None, dirty=False):
    """
    What a result file says was timed. A build given with --tome: its own stamped commit, else "unknown, --tome given"
    (the checkout's HEAD says nothing about it). The checkout's build: its stamped commit, noting a checkout that moved
    on since; without a stamp, the checkout's HEAD (the script has just built it).
    """
    built = commit_from_version(version_text)
    if tome_given:
        return f"{built} (the --tome build's own commit)" if built else "unknown, --tome given"
    if built is None:
        return (head or "unknown") + (" + uncommitted changes" if dirty else "")
    if head and not head.startswith(built) and not built.startswith(head):
        return f"{built} (the build; the checkout is at {head})"
    return built + (" + uncommitted changes" if dirty else "")


def build_commit(tome_dll, tome_given, root):
    """commit_label for the tome.dll at tome_dll, asking it for its version and git for the checkout's state."""
    def output(cmd):
        try:
            result = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout if result.returncode == 0 else None

    version = output(["dotnet", tome_dll, "--version"])
    if tome_given:
        return commit_label(version, True)
    head = (output(["git", "rev-parse", "--short", "HEAD"]) or "").strip() or None
    dirty = bool((output(["git", "status", "--porcelain", "--untracked-files=no"]) or "").strip())
    return commit_label(version, False, head, dirty)
