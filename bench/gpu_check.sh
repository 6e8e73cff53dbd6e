#!/usr/bin/env bash
# One-run device check: the engine's CUDA test suite (no-GPU skips turned into failures), `tome kernels test`,
# `tome kernels bench`, `tome bench` on ViT-S/B/L with random weights, and the PyTorch baselines of the same models on
# the same GPU, all into one folder with a summary table. The GPU machine has no .NET, so the build travels:
#
#   bench/gpu_check.sh pack [PACK]          on a machine with the .NET SDK: self-contained linux-x64 publish of the test
#                                           project (an xunit v3 executable) and the CLI into one folder, pruned, packed
#                                           into PACK (default .device/gpu-check.tar.xz; refused when it and the checkout
#                                           are over the 64 MiB a device call carries)
#   bench/gpu_check.sh run PACK OUT [--small] [--emulated]
#                                           on the GPU machine, from the checkout that travelled with PACK (its test data
#                                           and bench scripts): unpack, run every step, write OUT/summary.md
#   bench/gpu_check.sh run-local OUT [--small] [--emulated]
#                                           the same steps from this checkout's Release build (dotnet on PATH)
#
# A GPU run is strict: the tests run with TOME_REQUIRE_GPU=1 (a missing driver, NVRTC or cuBLAS fails instead of
# skipping, and so does finding the emulated device), and `tome devices` must show a real GPU. --small runs ViT-S at
# batch 1 and 2 only, short timings. --emulated (implies --small) rehearses every step on the emulated CUDA device
# (TOME_CUDA_LIB_DIR, default emulator/build of this checkout; `make -C emulator`): the tests with
# TOME_REQUIRE_EMULATOR=1, the benches on ViT-Ti, PyTorch on the CPU; its numbers say nothing about a GPU. Each step has
# a time limit and its own log; a failing step is recorded and the next one still runs. The exit status is non-zero
# when any step failed. Environment: STEPS (default: every step; else the steps whose names begin with one of its words),
# PRECISIONS (default "fp32", the precisions `tome bench` offers), TIME_SCALE
# (default 1, 4 with --emulated; multiplies every step's time limit), PYTHON (default python3), CUDA_TESTS_FILTER
# (xunit v3 filter arguments; default: the ToMe.Tests.Cuda namespace), FAULT_TESTS_FILTER (the same for the fault
# checks; default: GpuFaultTests and the CUDA soaks), TOME_SHARED (a copy of ../shared, for the tests that read the
# full fixtures and the real ViT-Ti, and for `tome eval` of the ViT-Ti over the ImageNet samples in fp32, fp16 and bf16;
# without it they skip, and the eval step is left out; run-local takes ../shared beside the checkout where it exists).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

pack() {
    local pack="${1:-$repo/.device/gpu-check.tar.xz}"
    local stage="$repo/.device/gpu-check"
    rm -rf "$stage" && mkdir -p "$stage/app" || exit 1
    local common=(-c Release -r linux-x64 --self-contained true -p:DebugType=none -p:GenerateDocumentationFile=false -o "$stage/app")
    dotnet publish "$repo/tests/ToMeEngine.Tests/ToMeEngine.Tests.csproj" "${common[@]}" || exit 1
    dotnet publish "$repo/src/ToMeEngine.Cli/ToMeEngine.Cli.csproj" "${common[@]}" || exit 1
    # Not needed on the GPU machine: the browser driver of the page tests, the code-coverage collector of the test SDK;
    # the test data, which the checkout that travels with every device call holds (run links it); and whatever else
    # gpu_pack_prune.cs finds that nothing loads. What travels is this pack and the checkout together (checked below).
    rm -rf "$stage/app/selenium-manager" "$stage/app/Microsoft.CodeCoverage" "$stage/app/TestData" 2>/dev/null
    dotnet run "$here/gpu_pack_prune.cs" -- "$stage/app" ToMeEngine.Tests tome || exit 1
    git -C "$repo" rev-parse HEAD > "$stage/COMMIT" 2>/dev/null || echo unknown > "$stage/COMMIT"
    mkdir -p "$(dirname "$pack")"
    XZ_OPT="${XZ_OPT:--6 -T0}" tar -C "$stage" -cJf "$pack" . || exit 1
    # A device call carries the checkout (tracked files and untracked ones git does not ignore) and the pack: 64 MiB in all.
    local bytes tree
    bytes=$(stat -c %s "$pack")
    tree=$(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
    echo "packed $pack: $((bytes / 1048576)) MiB; with the checkout that travels beside it, $(((bytes + tree) / 1048576)) MiB of the 64 MiB a device call carries"
    if [ $((bytes + tree)) -gt $((64 * 1048576)) ]; then
        echo "error: $pack ($((bytes / 1048576)) MiB) and the checkout ($((tree / 1048576)) MiB) are over the 64 MiB a device call carries" >&2
        exit 1
    fi
}

# Whether step NAME runs: every step, or those whose names begin with a word of STEPS (e.g. STEPS="devices cuda-tests
# gpu-faults kernels" in one device call, STEPS="bench torch" in the next, when one call's 10 minutes do not hold all).
selected() {
    [ -z "${STEPS:-}" ] && return 0
    local prefix
    for prefix in $STEPS; do
        [[ "$1" == "$prefix"* ]] && return 0
    done
    return 1
}

# Runs one step: name, time limit in seconds, command...; output in $out/logs/name.log, status in $out/steps.tsv.
step() {
    selected "$1" || return 0
    local name="$1" limit=$(($2 * ${TIME_SCALE:-1}))
    shift 2
    local start=$SECONDS
    echo "== $name ($(date -u +%T))"
    timeout --kill-after=10 "$limit" "$@" > "$out/logs/$name.log" 2>&1
    local code=$?
    local status=ok
    [ $code -ne 0 ] && status="failed (exit $code$([ $code -eq 124 ] && echo ", over ${limit} s"))"
    printf '%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - start))" >> "$out/steps.tsv"
    echo "   $status in $((SECONDS - start)) s"
}

# Records a failed check that is not a command: name, reason.
fail_check() {
    printf '%s\t%s\t%s\n' "$1" "failed ($2)" 0 >> "$out/steps.tsv"
    echo "== $1: failed ($2)"
}

# Runs the test executable as step NAME with filter arguments, results in OUT/NAME.xml; a filter that selects nothing
# passes in xunit, so here it is a failure too.
test_step() {
    selected "$1" || return 0
    local name="$1" limit="$2"
    shift 2
    step "$name" "$limit" env "${device_env[@]}" "${test_cmd[@]}" "$@" -noLogo -noColor -xml "$out/$name.xml"
    grep -q 'total="[1-9]' "$out/$name.xml" 2>/dev/null || fail_check "$name-ran" "no test ran"
}

run_steps() {
    local out="$1" small="$2" emulated="$3"
    local tome=(env "${device_env[@]}" "${tome_cmd[@]}")
    mkdir -p "$out/logs" "$out/json" || exit 1
    : > "$out/steps.tsv"
    local models=(vit_small_patch16_224 vit_base_patch16_224 vit_large_patch16_224) tmodels="ViT-S,ViT-B,ViT-L"
    local batches=(1 64 256) tbatches="1,64,256" runs=8 warmup=2 kbench=() truns=20 twarm=3
    if [ "$small" = 1 ]; then
        models=(vit_small_patch16_224) tmodels="ViT-S" batches=(1 2) tbatches="1,2" runs=2 truns=2 twarm=1
        kbench=(--models ViT-S --batch 1 --peak-gemm 256 --peak-copy-mib 4 --time-ms 0)
    fi
    local filter=(-filter "/*/ToMe.Tests.Cuda/*/*")
    if [ "$emulated" = 1 ]; then
        models=(vit_tiny_patch16_224) tmodels="ViT-Ti" runs=1 warmup=1 truns=1
    fi
    [ -n "${CUDA_TESTS_FILTER:-}" ] && read -r -a filter <<< "$CUDA_TESTS_FILTER"
    {
        echo "date: $(date -u '+%F %T UTC')"
        echo "commit: $commit"
        echo "host: $(hostname), $(nproc) cores"
        [ "$emulated" = 1 ] && echo "device: the emulated CUDA device ($TOME_CUDA_LIB_DIR), a rehearsal: no number here says anything about a GPU"
        command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
    } > "$out/machine.txt" 2>&1

    step devices 60 "${tome[@]}" devices --json
    cp "$out/logs/devices.log" "$out/json/devices.json" 2>/dev/null
    # A GPU run on the emulated device (TOME_CUDA_LIB_DIR pointing at it) would measure nothing: refuse it.
    if [ "$emulated" = 0 ] && grep -q '"emulated": *true' "$out/json/devices.json" 2>/dev/null; then
        fail_check devices-real "the CUDA driver found is the emulated device; run with --emulated to rehearse, or point TOME_CUDA_LIB_DIR at the GPU driver"
    fi
    test_step cuda-tests 300 "${filter[@]}"
    # The GPU fault checks (out of memory, a lost context, allocation failures in turn) and the CUDA soak.
    local faults=(-filter "/*/ToMe.Tests.Cuda/GpuFaultTests/*" -filter "/*/ToMe.Tests.Reliability/SoakTests/Cuda*")
    [ -n "${FAULT_TESTS_FILTER:-}" ] && read -r -a faults <<< "$FAULT_TESTS_FILTER"
    test_step gpu-faults 180 "${faults[@]}"
    step kernels-test 120 sh -c "$(printf '%q ' "${tome[@]}") kernels test --backend cuda --json > '$out/json/kernels-test.json'"
    step kernels-bench 120 sh -c "$(printf '%q ' "${tome[@]}") kernels bench --backend cuda ${kbench[*]} --json > '$out/json/kernels-bench.json'"
    for precision in ${PRECISIONS:-fp32}; do
        local popt=()
        [ "$precision" != fp32 ] && popt=(--precision "$precision")
        for model in "${models[@]}"; do
            for batch in "${batches[@]}"; do
                step "bench-$model-b$batch-$precision" 90 sh -c "$(printf '%q ' "${tome[@]}") bench --model $model --random-weights --backend cuda \
                    --batch $batch --r 0,13,16 --runs $runs --warmup $warmup ${popt[*]} --json > '$out/json/bench-$model-b$batch-$precision.json'"
            done
        done
    done
    # The real ViT-Ti over the ImageNet samples in each precision: accuracy and ToMe's speed-ups on the device, the schedules
    # interleaved (tome eval's comparison). Needs TOME_SHARED (a copy of ../shared); without it the step is left out.
    local shared="${TOME_SHARED:-}"
    if [ -n "$shared" ] && [ -d "$shared/imagenet-samples" ] && [ -d "$shared/models/vit_tiny_patch16_224.augreg_in21k_ft_in1k" ]; then
        local elimit=0 eprecisions="fp32 fp16 bf16"
        [ "$small" = 1 ] && elimit=16 eprecisions="auto"
        for precision in $eprecisions; do
            step "eval-vit-tiny-$precision" 300 sh -c "$(printf '%q ' "${tome[@]}") eval --model '$shared/models/vit_tiny_patch16_224.augreg_in21k_ft_in1k' \
                --images '$shared/imagenet-samples' --backend cuda --precision $precision --r 0 --r 13 --r 16 --batch 64 --limit $elimit \
                --json > '$out/json/eval-vit-tiny-$precision.json'"
        done
    else
        echo "== eval: left out (TOME_SHARED does not hold imagenet-samples and the ViT-Ti model)"
    fi
    local device=cuda
    [ "$emulated" = 1 ] && device=cpu
    step torch-baseline 300 "${PYTHON:-python3}" "$bench/torch_gpu_baseline.py" --device $device --models "$tmodels" --batch "$tbatches" \
        --r 0,13,16 --runs $truns --warmup $twarm --json "$out/json/torch.json"
    "${PYTHON:-python3}" "$bench/gpu_check_summary.py" "$out" > "$out/summary.md" || echo "summary failed" >> "$out/summary.md"
    cat "$out/summary.md"
    ! grep -q "failed" "$out/steps.tsv"
}

# --small, --emulated: sets small, emulated and the environment of every step that touches the device (device_env).
options() {
    small=0 emulated=0
    for option in "$@"; do
        case "$option" in
            --small) small=1 ;;
            --emulated) small=1 emulated=1 ;;
            *) echo "error: unknown option $option (expected --small or --emulated)" >&2; exit 2 ;;
        esac
    done
    if [ "$emulated" = 1 ]; then
        export TOME_CUDA_LIB_DIR="${TOME_CUDA_LIB_DIR:-$repo/emulator/build}"
        [ -f "$TOME_CUDA_LIB_DIR/libtome_cuda_emulator.so" ] || {
            echo "error: no emulated CUDA device in $TOME_CUDA_LIB_DIR (build it: make -C emulator)" >&2
            exit 2
        }
        device_env=(TOME_REQUIRE_EMULATOR=1 TOME_CUDA_LIB_DIR="$TOME_CUDA_LIB_DIR")
        # Kernels run on the CPU, about a thousand times slower than on a GPU.
        TIME_SCALE="${TIME_SCALE:-4}"
    else
        device_env=(TOME_REQUIRE_GPU=1)
    fi
}

case "${1:-}" in
    pack)
        pack "${2:-}" ;;
    run)
        [ $# -ge 3 ] || { echo "usage: $0 run PACK OUT [--small] [--emulated]" >&2; exit 2; }
        options "${@:4}"
        work="$(mktemp -d)"
        tar -C "$work" -xJf "$2" || exit 1
        # The tests' data from the checkout this script is in (the pack leaves it out: the checkout travels anyway), and
        # the checkout itself for the tests that read its files (kernels/, the README).
        [ -d "$work/app/TestData" ] || ln -s "$repo/tests/ToMeEngine.Tests/TestData" "$work/app/TestData" || exit 1
        export TOME_CHECKOUT="$repo"
        out="$(mkdir -p "$3" && cd "$3" && pwd)"
        bench="$here" # the scripts of the checkout that travelled with the pack
        commit="$(cat "$work/COMMIT")"
        test_cmd=("$work/app/ToMeEngine.Tests")
        tome_cmd=("$work/app/tome")
        run_steps "$out" "$small" "$emulated"
        code=$?
        rm -rf "$work"
        exit $code ;;
    run-local)
        [ $# -ge 2 ] || { echo "usage: $0 run-local OUT [--small] [--emulated]" >&2; exit 2; }
        options "${@:3}"
        out="$(mkdir -p "$2" && cd "$2" && pwd)"
        bench="$here"
        commit="$(git -C "$repo" rev-parse HEAD)"
        [ -z "${TOME_SHARED:-}" ] && [ -d "$repo/../shared" ] && export TOME_SHARED="$(cd "$repo/../shared" && pwd)"
        bin="$repo/tests/ToMeEngine.Tests/bin/Release/net10.0"
        test_cmd=(dotnet "$bin/ToMeEngine.Tests.dll")
        tome_cmd=(dotnet "$bin/tome.dll")
        run_steps "$out" "$small" "$emulated" ;;
    *)
        sed -n '2,/^set -uo pipefail/p' "$0" | sed '$d' >&2
        exit 2 ;;
esac
