"""The summary of one bench/gpu_check.sh run: python3 bench/gpu_check_summary.py OUT > OUT/summary.md

Reads OUT/steps.tsv, OUT/cuda-tests.xml and OUT/json/*.json (whatever the run produced; a missing file is reported,
never invented) and prints markdown: the steps, the test and kernel-check counts, the kernel benchmark, and
ToMeEngine against each PyTorch variant per (model, batch, r) from the same run.
"""
import glob, json, os, sys
import xml.etree.ElementTree as ET

ARCH = {"vit_tiny_patch16_224": "ViT-Ti", "vit_small_patch16_224": "ViT-S", "vit_base_patch16_224": "ViT-B", "vit_large_patch16_224": "ViT-L"}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"_missing": f"{os.path.basename(path)}: {type(e).__name__}"}


def main(out):
    machine = open(f"{out}/machine.txt").read().strip() if os.path.exists(f"{out}/machine.txt") else ""
    emulated = "the emulated CUDA device" in machine
    print("# Device check" + (" (rehearsal on the emulated CUDA device)" if emulated else "") + "\n")
    if emulated:
        print("**Every number below was measured on the CPU (the emulated device, PyTorch on the CPU) and says nothing "
              "about a GPU.**\n")
    if machine:
        print("```\n" + machine + "\n```\n")
    print("## Steps\n\n| step | status | seconds |\n|---|---|---:|")
    total, ran = 0, set()
    for line in open(f"{out}/steps.tsv"):
        name, status, seconds = line.rstrip("\n").split("\t")
        total += int(seconds)
        ran.add(name)
        print(f"| {name} | {status} | {seconds} |")
    print(f"| total | | {total} |\n")

    print("## Tests\n")
    mode = "TOME_REQUIRE_EMULATOR=1" if emulated else "TOME_REQUIRE_GPU=1"
    not_run = "not run in this call (STEPS left it out)"
    for name, title in (("cuda-tests", "CUDA suite"), ("gpu-faults", "GPU fault checks and CUDA soak")):
        if name not in ran:
            print(f"{title}: {not_run}\n")
            continue
        try:
            totals = {k: 0 for k in ("total", "passed", "failed", "skipped")}
            for a in ET.parse(f"{out}/{name}.xml").getroot().iter("assembly"):
                for k in totals:
                    totals[k] += int(a.get(k, 0))
            print(f"{title} ({mode}): " + "{total} tests, {passed} passed, {failed} failed, {skipped} skipped\n".format(**totals))
        except (OSError, ET.ParseError) as e:
            print(f"{title}: no result ({type(e).__name__}); see logs/{name}.log\n")
    checks = load(f"{out}/json/kernels-test.json")
    if "kernels-test" not in ran:
        print(f"\ntome kernels test: {not_run}")
    elif "_missing" in checks:
        print(f"\ntome kernels test: no result ({checks['_missing']}); see logs/kernels-test.log")
    else:
        print(f"\ntome kernels test on {checks.get('device')}: {checks.get('passed')} passed, {checks.get('failed')} failed")
        for r in checks.get("results", []):
            if not r.get("passed"):
                print(f"* FAILED {r.get('op')} {r.get('case')}: {r.get('failure')}")

    kb = load(f"{out}/json/kernels-bench.json")
    print("\n## Kernels\n")
    if "kernels-bench" not in ran:
        print(not_run)
    elif "_missing" in kb:
        print(f"no result ({kb['_missing']}); see logs/kernels-bench.log")
    else:
        p = kb.get("peaks", {})
        print(f"{kb.get('device')}, {kb.get('precision')}; peaks measured in the run: GEMM {p.get('gemm_tflops', 0):.2f} TFLOP/s, "
              f"copy {p.get('copy_gigabytes_per_second', 0):.0f} GB/s\n")
        print("| kernel | model | batch | shape | ms | rate | % of peak |\n|---|---|---:|---|---:|---:|---:|")
        for r in kb.get("results", []):
            print(f"| {r['kernel']} | {r['model']} | {r['batch']} | {r['shape']} | {r['milliseconds']:.3f} | {r['rate']:.2f} {r['unit']} | {r['percent_of_peak']:.0f}% |")

    torch_rows = load(f"{out}/json/torch.json")
    torch_rows = [] if isinstance(torch_rows, dict) else torch_rows
    variants = sorted({r["variant"] for r in torch_rows})
    print("\n## Forward: ToMeEngine and PyTorch, images/s " + ("(emulated device and CPU: a rehearsal, not a comparison)" if emulated
                                                              else "(same GPU, same run)") + "\n")
    head = "| model | batch | r | precision | ToMeEngine | " + " | ".join(f"PyTorch {v} | ratio" for v in variants) + " |"
    print(head + "\n|" + "---|" * (head.count("|") - 1))
    for path in sorted(glob.glob(f"{out}/json/bench-*.json")):
        b = load(path)
        if "_missing" in b:
            print(f"| {os.path.basename(path)} | | | | no result | " + " | ".join("|" for _ in variants))
            continue
        model = ARCH.get(b["model"], b["model"])
        for r in b["results"]:
            cells = []
            for v in variants:
                t = next((x for x in torch_rows if x["model"] == model and x["batch"] == b["batch"] and str(x["r"]) == r["schedule"]
                          and x["variant"] == v), None)
                if t is None or "images_per_second" not in t:
                    cells.append(f"{t['error'] if t else 'not run'} | ")
                else:
                    cells.append(f"{t['images_per_second']:.1f} | {r['images_per_second'] / t['images_per_second']:.2f}")
            print(f"| {model} | {b['batch']} | {r['schedule']} | {b['precision']} | {r['images_per_second']:.1f} | " + " | ".join(cells) + " |")
    if torch_rows:
        print(f"\nPyTorch {torch_rows[0]['torch']} on {torch_rows[0]['device']}; ratio = ToMeEngine / PyTorch (above 1: ToMeEngine faster).")
    else:
        print("\nNo PyTorch result; see logs/torch-baseline.log.")

    evals = sorted(glob.glob(f"{out}/json/eval-*.json"))
    if evals:
        print("\n## ViT-Ti over the ImageNet samples (tome eval: accuracy, and speed-ups paired per batch against r = 0)\n")
        print("| precision | r | images | top-1 | top-5 | same top-1 as r = 0 | images/s (forward) | speed-up (quartiles) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for path in evals:
            e = load(path)
            if "_missing" in e:
                print(f"| {os.path.basename(path)} | no result | | | | | | |")
                continue
            for r in e["results"]:
                print(f"| {e['precision']} | {r['schedule']} | {r['images']} | {r['top1_percent']:.2f}% | {r['top5_percent']:.2f}% | "
                      f"{r['same_top1_as_first_percent']:.2f}% | {r['images_per_second']:.1f} | {r['speedup_over_first']:.2f}x "
                      f"({r['speedup_lower_quartile']:.2f}-{r['speedup_upper_quartile']:.2f}) |")


if __name__ == "__main__":
    main(sys.argv[1])
