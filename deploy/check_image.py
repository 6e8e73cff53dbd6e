#!/usr/bin/env python3
"""The container image of deploy/Dockerfile, checked where no Docker engine runs.

    /usr/bin/python3 deploy/check_image.py [--models DIR] [--keep DIR]

Reads the Dockerfile and does what an engine would, outside a container: the build stage's `dotnet publish` (its
output folder moved under a temporary root), then the final stage's ENTRYPOINT + CMD with its ENV, as its USER, with
the image's folders (/app, the kernel cache, /models) mapped to folders here: /models to --models (default
../shared/models beside the checkout). It waits for the service's readiness, classifies a photo through `POST
/classify`, and stops it. What it cannot check: the base images themselves (the CUDA runtime layer) and the GPU path.
Exit status 0 when every step worked, 1 otherwise; 2 when the models folder or the photo is absent (nothing to serve).
"""
import argparse
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse(dockerfile):
    """The stages of a Dockerfile: a list of (name, [(instruction, argument)]), line continuations joined."""
    stages, text = [], open(dockerfile, encoding="utf-8").read()
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "FROM":
            parts = rest.split()
            stages.append((parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None, []))
        elif stages:
            stages[-1][1].append((word, rest))
    return stages


def exec_form(argument, what):
    try:
        value = json.loads(argument)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SystemExit(f"deploy/Dockerfile: {what} must be a JSON array of strings (exec form), got {argument}")
    return value


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=os.path.join(ROOT, "..", "shared", "models"))
    ap.add_argument("--keep", help="build into this folder and keep it (default: a temporary folder, removed)")
    args = ap.parse_args()
    photo = os.path.join(ROOT, "..", "shared", "imagenet-samples", "n01440764_tench.JPEG")
    if not os.path.isdir(args.models) or not os.path.isfile(photo):
        print(f"check_image: no models folder at {args.models} or no photo at {photo}: image not checked")
        return 2

    stages = parse(os.path.join(ROOT, "deploy", "Dockerfile"))
    build = next(steps for name, steps in stages if name == "build")
    final = stages[-1][1]
    runs = [arg for word, arg in build if word == "RUN"]
    if len(runs) != 1 or not runs[0].startswith("dotnet publish") or " -o /app" not in runs[0]:
        raise SystemExit(f"deploy/Dockerfile: expected one `RUN dotnet publish ... -o /app` in the build stage, got {runs}")
    if ("COPY", "--from=build /app /app") not in final:
        raise SystemExit("deploy/Dockerfile: the final stage should COPY --from=build /app /app")
    env = {}
    for word, arg in final:
        if word == "ENV":
            for pair in shlex.split(arg):
                key, _, value = pair.partition("=")
                env[key] = value
    user = next((arg for word, arg in final if word == "USER"), None)
    entry = exec_form(next(arg for word, arg in final if word == "ENTRYPOINT"), "ENTRYPOINT")
    cmd = exec_form(next(arg for word, arg in final if word == "CMD"), "CMD")

    root = os.path.abspath(args.keep or tempfile.mkdtemp(prefix="tome-image-"))
    os.makedirs(root, exist_ok=True)
    # The models are copied under root (ViT-Ti: 22 MB), world-readable: the image's user may not reach the checkout.
    models = os.path.join(root, "models")
    shutil.rmtree(models, ignore_errors=True)
    shutil.copytree(args.models, models)
    for folder, _, files in os.walk(models):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    mapped = {"/app": os.path.join(root, "app"), "/models": models}
    for key, value in env.items():
        if value.startswith("/") and value not in mapped:
            mapped[value] = os.path.join(root, value.strip("/").replace("/", "_"))
            os.makedirs(mapped[value], exist_ok=True)
            os.chmod(mapped[value], 0o777)

    def here(value):
        for inside, outside in sorted(mapped.items(), key=lambda kv: -len(kv[0])):
            if value == inside or value.startswith(inside + "/"):
                return outside + value[len(inside):]
        return value

    status = 1
    server = None
    try:
        publish = runs[0].replace(" -o /app", " -o " + shlex.quote(mapped["/app"]))
        print(f"check_image: {publish}", flush=True)
        subprocess.run(publish, shell=True, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        os.chmod(root, 0o755)

        port = free_port()
        argv = [here(a) for a in entry + cmd]
        if "--port" in argv:
            argv[argv.index("--port") + 1] = str(port)
        else:
            argv += ["--port", str(port)]
        home = os.path.join(root, "home")
        os.makedirs(home, exist_ok=True)
        os.chmod(home, 0o777)
        environment = dict(os.environ, HOME=home, **{k: here(v) for k, v in env.items()})
        prefix = []
        # Only where every folder above root lets others through (a checkout under /root does not).
        above = [os.path.dirname(root)]
        while above[-1] != os.path.dirname(above[-1]):
            above.append(os.path.dirname(above[-1]))
        reachable = all(os.stat(folder).st_mode & 0o001 for folder in above)
        if user and os.geteuid() == 0 and shutil.which("setpriv") and reachable:
            prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
        elif user:
            print(f"check_image: running as the current user, not {user} (no setpriv, not root, or {root} not reachable)")
        print(f"check_image: {' '.join(prefix + argv)}", flush=True)
        server = subprocess.Popen(prefix + argv, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the service exited with {server.returncode} before it was ready")
            try:
                with urllib.request.urlopen(base + "/v2/health/ready", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("the service was not ready within 120 s")
            time.sleep(0.5)

        request = urllib.request.Request(base + "/classify?top=3", data=open(photo, "rb").read(), method="POST",
                                         headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(request, timeout=60) as r:
            answer = json.load(r)
        predictions = answer.get("predictions")
        if not isinstance(predictions, list) or len(predictions) != 3:
            raise RuntimeError(f"POST /classify answered {answer}")
        print(f"check_image: ready on port {port} as user {user if prefix else os.geteuid()}; POST /classify: "
              + ", ".join(f"{p['label']} {p['probability']:.3f}" for p in predictions))
        status = 0
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        print(f"check_image: FAILED: {e}")
    finally:
        if server is not None:
            server.terminate()
            try:
                out, _ = server.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                out, _ = server.communicate()
            if status != 0:
                print(out[-4000:])
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
