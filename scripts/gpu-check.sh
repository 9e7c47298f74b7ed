#!/usr/bin/env bash
# One command for a first contact with a CUDA host: proves every CUDA path and writes a handful of small
# files into OUTDIR, within a wall-clock budget (default 480 s; GPU_CHECK_BUDGET overrides), each stage with
# its own timeout so that nothing can hang the command:
#   env      machine, nvidia-smi, python/torch, commit
#   device   `benchmarks device`: driver, libraries (and where they came from), backend open, every kernel
#            module loaded (cubin/ptx, and why the loader fell back), a first GEMM/conv/NT-Xent vs the CPU
#            twin; plus the trainer's `info`. No usable device: exit 2 here, with one line, in seconds.
#   tests    every CUDA and NVRTC test class ([Trait("Requires", ...)]) with SIMCLR_REQUIRE_CUDA=1, so a
#            would-be skip is a failure that names why
#   smoke    the kernels and step benchmark suites at smoke sizes
#   train    a two-epoch pretraining run on the GPU with linear and kNN evaluation (images/s)
#   full     the benchmark suites at full sizes, while the budget lasts
#   compare  benchmarks/compare.py: PyTorch on the same machine beside our figures (no torch.compile)
# Files in OUTDIR: summary.md (verdict, what failed first, the rows to paste into tests/GPU-RESULTS.md and
# benchmarks/RESULTS.md), device.txt, tests.ctrf.json, benchmarks.json, compare.md, train.json, logs.txt.
# Exit: 0 everything passed; 1 something failed (summary.md lists it first); 2 no usable CUDA device.
#
# Usage: scripts/gpu-check.sh [--rehearse-cpu] OUTDIR      (inside the bundle: simclr-gpu/gpu-check.sh OUTDIR)
#   --rehearse-cpu  run every stage on the CPU instead (cpu suites, --device cpu, the CUDA tests without
#                   SIMCLR_REQUIRE_CUDA): the same plumbing, for rehearsing on a machine without a GPU.
# From a checkout the programs must be built first (dotnet build SimClr.Native.sln -c Release).
set -uo pipefail

mode=gpu
if [ "${1:-}" = "--rehearse-cpu" ]; then mode=cpu; shift; fi
if [ $# -ne 1 ]; then
  echo "usage: $0 [--rehearse-cpu] OUTDIR" >&2
  exit 64
fi
out=$1
mkdir -p "$out" || { echo "gpu-check: cannot create $out" >&2; exit 1; }
out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
budget=${GPU_CHECK_BUDGET:-480}
start=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
stages=$work/stages.tsv
: > "$stages"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 PYTHONUNBUFFERED=1
# A fresh kernel cache: the device stage compiles every module once, later stages reuse it.
export SIMCLR_KERNEL_CACHE=$work/kernel-cache
# Plain FP32 as the tests expect; an inherited override would turn cuBLAS/cuDNN FP32 into TF32.
unset NVIDIA_TF32_OVERRIDE

# ---- where the programs are ------------------------------------------------------------------------
if [ -f "$here/app/SimClr.Tests.dll" ]; then
  layout=bundle
  run_train=("$here/run.sh")
  run_tests=("$here/run-tests.sh")
  run_bench=("$here/run-benchmarks.sh")
  compare_py=$here/benchmarks/compare.py
  commit=$(cat "$here/COMMIT" 2>/dev/null || echo unknown)
else
  layout=checkout
  root=$(cd "$here/.." && pwd)
  dotnet_host=${DOTNET_ROOT:+$DOTNET_ROOT/dotnet}
  [ -x "${dotnet_host:-}" ] || dotnet_host=$(command -v dotnet || true)
  bin=bin/Release/net10.0
  for dll in "$root/src/Training/$bin/SimClr.Training.dll" "$root/tests/$bin/SimClr.Tests.dll" "$root/benchmarks/$bin/SimClr.Benchmarks.dll"; do
    if [ ! -f "$dll" ] || [ -z "$dotnet_host" ]; then
      echo "gpu-check: $dll is not built (or no dotnet host): run dotnet build SimClr.Native.sln -c Release first"
      exit 1
    fi
  done
  run_train=("$dotnet_host" "$root/src/Training/$bin/SimClr.Training.dll")
  run_tests=("$dotnet_host" "$root/tests/$bin/SimClr.Tests.dll")
  run_bench=("$dotnet_host" "$root/benchmarks/$bin/SimClr.Benchmarks.dll")
  compare_py=$root/benchmarks/compare.py
  commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git -C "$root" status --porcelain 2>/dev/null)" ]; then commit="$commit+changes"; fi
fi
python=$(command -v python3 || true)

log() { printf '[gpu-check %3ds] %s\n' $((SECONDS - start)) "$*" >&2; }
remaining() { echo $((budget - (SECONDS - start))); }

# stage NAME CAP_SECONDS MIN_SECONDS COMMAND...: runs COMMAND with a timeout of min(CAP, what is left of
# the budget less a reserve for the summary), its output in $work/NAME.log; records
# "NAME<TAB>status<TAB>seconds<TAB>exit" in the stage table. A stage that would get less than MIN is skipped.
reserve=15
stage() {
  local name=$1 cap=$2 min=$3
  shift 3
  local left=$(( $(remaining) - reserve ))
  local limit=$(( cap < left ? cap : left ))
  if [ "$limit" -lt "$min" ]; then
    log "$name: skipped, out of time (${left}s left, needs ${min}s)"
    printf '%s\tskipped (out of time)\t0\t-\n' "$name" >> "$stages"
    return 125
  fi
  log "$name: started (limit ${limit}s)"
  local t0=$SECONDS code
  timeout --kill-after=10 "$limit" "$@" > "$work/$name.log" 2>&1
  code=$?
  local took=$((SECONDS - t0)) status
  case $code in
    0) status=ok ;;
    124|137) status="TIMED OUT after ${limit}s" ;;
    *) status="FAILED (exit $code)" ;;
  esac
  log "$name: $status in ${took}s"
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$took" "$code" >> "$stages"
  return $code
}

skip() { printf '%s\tskipped (%s)\t0\t-\n' "$1" "$2" >> "$stages"; log "$1: skipped ($2)"; }

finish() {
  local verdict=$1 code=$2
  summary_args=(--work "$work" --out "$out" --mode "$mode" --layout "$layout" --commit "$commit" --verdict "$verdict" --seconds $((SECONDS - start)) --budget "$budget")
  if [ -n "$python" ] && "$python" "$here/gpu_check_summary.py" "${summary_args[@]}" 2> "$work/summary.err"; then
    :
  else
    # No python (or it failed): the stage table alone, so that summary.md always exists.
    {
      echo "# gpu-check: $verdict"
      echo
      echo "commit $commit, $layout, mode $mode, $((SECONDS - start)) s"
      echo
      echo "| stage | status | seconds | exit |"
      echo "|---|---|---:|---:|"
      while IFS=$'\t' read -r n s t c; do echo "| $n | $s | $t | $c |"; done < "$stages"
      [ -s "$work/summary.err" ] && { echo; echo "summary script failed:"; sed 's/^/    /' "$work/summary.err"; }
    } > "$out/summary.md"
    for f in device.log tests.log; do [ -f "$work/$f" ] && tail -c 200000 "$work/$f" >> "$out/logs.txt"; done
  fi
  rm -rf "$work"
  echo "gpu-check: $verdict"
  exit "$code"
}

# ---- env ---------------------------------------------------------------------------------------------
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit: $commit ($layout)"
  echo "host: $(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM"
  grep -m1 'model name' /proc/cpuinfo
  if command -v nvidia-smi > /dev/null; then
    echo "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | head -n 4 | tr '\n' ';')"
  else
    echo "nvidia-smi: not on PATH"
  fi
  if [ -n "$python" ]; then
    echo "python3: $python $("$python" -c 'import sys; print(sys.version.split()[0])' 2>&1)"
    "$python" -c 'import torch, torchvision; print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), torchvision {torchvision.__version__}, cuda available: {torch.cuda.is_available()}")' 2>&1 | tail -n 1
  else
    echo "python3: not on PATH"
  fi
} > "$work/env.log" 2>&1
printf 'env\tok\t0\t0\n' >> "$stages"

# ---- device ------------------------------------------------------------------------------------------
stage device 120 20 "${run_bench[@]}" device --json "$work/device.json"
device_code=$?
if [ "$device_code" -eq 2 ]; then
  if [ "$mode" = cpu ]; then note='ok (no CUDA device, as expected in the rehearsal)'; else note='no usable CUDA device'; fi
  sed -i "\$ s/\tFAILED (exit 2)\t/\t$note\t/" "$stages"
fi
stage info 60 10 "${run_train[@]}" info
if [ "$mode" = gpu ] && [ "$device_code" -eq 2 ]; then
  reason=$(grep -m1 '^no usable CUDA device' "$work/device.log" || echo "no usable CUDA device (see device.txt)")
  finish "$reason" 2
fi
device_ok=1
[ "$mode" = gpu ] && [ "$device_code" -ne 0 ] && device_ok=0

# ---- tests -------------------------------------------------------------------------------------------
require=$([ "$mode" = gpu ] && echo 1 || echo 0)
# The verbose reporter logs each test as it starts and -longRunning names one that runs past 60 s, so that a
# hang cut off by the stage's timeout (which loses the CTRF report) still shows where it was in logs.txt.
stage tests 200 30 env SIMCLR_REQUIRE_CUDA=$require "${run_tests[@]}" -noLogo -reporter verbose -longRunning 60 \
  -trait Requires=CUDA -trait Requires=NVRTC -result-ctrf "$work/tests.ctrf.json"

# ---- benchmarks at smoke sizes, training, benchmarks at full sizes, PyTorch beside them ---------------
# In this order because the budget cuts from the end: the full sizes and the comparison are what can wait.
export SIMCLR_REQUIRE_CUDA=$require
mkdir -p "$work/bench-smoke" "$work/bench-full"
if [ "$device_ok" -eq 0 ]; then
  for s in smoke train full compare; do skip "$s" "the device stage failed: the backend does not work"; done
  finish "FAILED: the device stage (see device.txt)" 1
fi
if [ "$mode" = gpu ]; then
  stage smoke-kernels 60 15 "${run_bench[@]}" kernels --smoke --json "$work/bench-smoke/results-kernels.json"
  stage smoke-step 60 15 "${run_bench[@]}" step --smoke --json "$work/bench-smoke/results-step.json"
  stage train 120 40 "${run_train[@]}" pretrain --device cuda --dataset shapes --shapes-count 10240 --image-size 32 --arch resnet18 --width 1 \
    --batch-size 512 --epochs 2 --knn-every 0 --linear-epochs 20 --progress plain --out "$work/train"
  stage full-kernels 120 45 "${run_bench[@]}" kernels --json "$work/bench-full/results-kernels.json"
  stage full-step 120 45 "${run_bench[@]}" step --json "$work/bench-full/results-step.json"
else
  stage smoke-cpu 90 15 "${run_bench[@]}" cpu --smoke --json "$work/bench-smoke/results-cpu.json"
  stage train 150 30 "${run_train[@]}" pretrain --device cpu --dataset shapes --shapes-count 256 --image-size 16 --arch resnet18 \
    --width 0.125 --batch-size 32 --epochs 2 --knn-every 0 --linear-epochs 5 --progress plain --out "$work/train"
  # A full-size row, to go through the full-size path without the CPU suite's quarter of an hour.
  stage full-cpu 120 15 "${run_bench[@]}" cpu --filter gemm.sq256 --json "$work/bench-full/results-cpu.json"
fi

device_flag=$([ "$mode" = gpu ] && echo cuda || echo cpu)
full_files=$([ "$mode" = gpu ] && echo "results-kernels.json results-step.json" || echo "results-cpu.json")
ours=$work/bench-full
compare_size=()
for f in $full_files; do [ -s "$ours/$f" ] || { ours=$work/bench-smoke; compare_size=(--smoke); }; done
# The rehearsal's full stage holds one row: compare at smoke sizes, where both sides have every row.
if [ "$mode" = cpu ]; then ours=$work/bench-smoke; compare_size=(--smoke); fi
if [ -z "$python" ]; then
  skip compare "no python3 on PATH"
else
  stage compare 120 30 "$python" "$compare_py" --device "$device_flag" "${compare_size[@]}" --no-compile --ours-json "$ours" --out "$work/compare"
fi

if awk -F'\t' '$2 !~ /^ok/ { bad = 1 } END { exit !bad }' "$stages"; then
  first=$(awk -F'\t' '$2 !~ /^ok/ { print $1 ": " $2; exit }' "$stages")
  finish "FAILED: $first" 1
fi
finish "PASSED ($mode)" 0
