#!/usr/bin/env python3
"""Two or more ToMeEngine builds (or one build under different DOTNET_* settings) against each other, interleaved.

    /usr/bin/python3 bench/ab_tome.py [--model vit_tiny_patch16_224] [--r 13] [-b 1] [--runs 16] [--warmup 1] [--rounds 4]
        NAME=PATH/tome.dll[,VAR:VALUE...] NAME=PATH/tome.dll[,VAR:VALUE...] ...

Each round runs every variant once, in the order given, as a fresh `tome bench --json` process on seeded random weights;
the first variant is the baseline. Prints every round and, per variant, its median ms per batch and the median of the
paired ratios baseline ms / variant ms (> 1: the variant is faster) with their range. On a shared machine only the
paired ratios mean anything. Example, the effect of tiered compilation's quick JIT on one build:

    /usr/bin/python3 bench/ab_tome.py base=/tmp/a/tome.dll noquickjit=/tmp/a/tome.dll,DOTNET_TC_QuickJit:0
"""
import argparse
import json
import os
import resource
import statistics
import subprocess


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vit_tiny_patch16_224", help="a timm architecture name (random weights)")
    ap.add_argument("--r", default="13", help="the merge schedule, as tome bench --r")
    ap.add_argument("-b", "--batch", default="1")
    ap.add_argument("--runs", default="16")
    ap.add_argument("--warmup", default="1")
    ap.add_argument("--threads", default="0")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--stat", choices=["median", "min", "cpu"], default="median",
                    help="per variant and round: the median ms per batch of its timed runs; the fastest run; or cpu, the "
                         "process CPU time (user + sys, all threads) per batch, from a second process with one timed run "
                         "subtracted (steadiest while other work shares the cores; counts every thread's time, spinning "
                         "included, so it is not a latency)")
    ap.add_argument("variants", nargs="+", help="NAME=PATH/tome.dll[,VAR:VALUE...]")
    args = ap.parse_args()

    variants = []
    for spec in args.variants:
        name, rest = spec.split("=", 1)
        dll, *settings = rest.split(",")
        env = dict(os.environ)
        env.update(s.split(":", 1) for s in settings)
        variants.append((name, dll, env))

    ms = {name: [] for name, _, _ in variants}
    for round_index in range(args.rounds):
        for name, dll, env in variants:
            def bench(runs):
                cmd = ["dotnet", dll, "bench", "-m", args.model, "--random-weights", "-b", args.batch, "--r", args.r,
                       "--runs", str(runs), "--warmup", args.warmup, "--threads", args.threads,
                       "--precision", args.precision, "--json"]
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
                return json.loads(out[out.index("{"):])["results"][0], cpu
            if args.stat == "cpu":
                # The CPU time of runs timed runs less that of one (the same start-up and warm-up), per run.
                (_, many), (_, one) = bench(int(args.runs)), bench(1)
                result = (many - one) * 1000 / (int(args.runs) - 1)
            else:
                run, _ = bench(args.runs)
                result = run["milliseconds_min" if args.stat == "min" else "milliseconds_per_batch"]
            ms[name].append(result)
            print(f"round {round_index + 1} {name}: {result:.1f} ms ({args.stat})", flush=True)

    base = variants[0][0]
    for name, _, _ in variants:
        ratios = [b / v for b, v in zip(ms[base], ms[name])]
        print(f"{name}: median {statistics.median(ms[name]):.1f} ms; {base} ÷ {name} paired median "
              f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})")


if __name__ == "__main__":
    main()
