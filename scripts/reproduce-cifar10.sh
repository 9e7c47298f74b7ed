#!/usr/bin/env bash
# Reproduces SimCLR's CIFAR-10 linear-evaluation result (paper: 94.0% top-1 with ResNet-50, 1000 epochs).
#
# Steps: (1) fetch cifar-10-binary.tar.gz from the dataset authors (or take --archive PATH), (2) verify its
# MD5, (3) extract cifar-10-batches-bin, (4) pretrain the paper's CIFAR-10 configuration (ResNet-50 with the
# CIFAR stem, batch 1024, 1000 epochs, temperature 0.5, colour strength 0.5, no blur; LARS with square-root
# learning-rate scaling) and/or a faster ResNet-18 500-epoch variant, (5) run linear evaluation on the frozen
# encoder of each (SimCLR beside a random-init encoder of the same architecture).
#
# Usage: scripts/reproduce-cifar10.sh [--variant paper|resnet18|all] [--archive PATH] [--md5 HEX]
#          [--data DIR] [--out DIR] [--device auto|cpu|cuda[:N]]
#          [--epochs N] [--batch-size N] [--width W] [--train-subset N] [--test-subset N] [--linear-epochs N]
# The last group overrides the variants' settings; they exist to smoke-test the script's steps quickly.
# SIMCLR_CMD overrides how the trainer is started (default: dotnet run -c Release --project src/Training --).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
md5_official="c32a1d4ab5d03f1284b67883e8d87530"   # the authors' published MD5 (170,052,171 bytes)
md5="$md5_official"
variant="all"
archive=""
data="$root/data"
out="$root/runs/reproduce-cifar10"
device="auto"
epochs="" batch="" width="" train_subset="" test_subset="" linear_epochs=""

die() { echo "error: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --variant) variant="${2:?--variant needs a value}"; shift 2 ;;
    --archive) archive="${2:?--archive needs a path}"; shift 2 ;;
    --md5) md5="${2:?--md5 needs a value}"; shift 2 ;;
    --data) data="${2:?--data needs a folder}"; shift 2 ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --device) device="${2:?--device needs a value}"; shift 2 ;;
    --epochs) epochs="${2:?}"; shift 2 ;;
    --batch-size) batch="${2:?}"; shift 2 ;;
    --width) width="${2:?}"; shift 2 ;;
    --train-subset) train_subset="${2:?}"; shift 2 ;;
    --test-subset) test_subset="${2:?}"; shift 2 ;;
    --linear-epochs) linear_epochs="${2:?}"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case "$variant" in paper|resnet18|all) ;; *) die "--variant must be paper, resnet18 or all, got '$variant'" ;; esac

if [ -n "${SIMCLR_CMD:-}" ]; then
  read -r -a trainer <<<"$SIMCLR_CMD"
else
  trainer=(dotnet run -c Release --project "$root/src/Training" --)
fi

# (1) the archive
mkdir -p "$data"
if [ -z "$archive" ]; then
  archive="$data/cifar-10-binary.tar.gz"
  if [ ! -f "$archive" ]; then
    echo "downloading $url"
    if command -v curl >/dev/null; then curl -fL --retry 3 -o "$archive.part" "$url" || die "download of $url failed"
    elif command -v wget >/dev/null; then wget -O "$archive.part" "$url" || die "download of $url failed"
    else die "neither curl nor wget is installed; download $url yourself and pass --archive PATH"; fi
    mv "$archive.part" "$archive"
  fi
fi
[ -f "$archive" ] || die "$archive: archive not found"

# (2) the checksum
actual="$(md5sum "$archive" | cut -d' ' -f1)"
[ "$actual" = "$md5" ] || die "$archive: MD5 checksum mismatch: expected $md5, got $actual (corrupt or incomplete download?)"
echo "checksum ok: $archive ($actual)"

# (3) extraction: only the expected members, into $data/cifar-10-batches-bin
members=(cifar-10-batches-bin/data_batch_1.bin cifar-10-batches-bin/data_batch_2.bin cifar-10-batches-bin/data_batch_3.bin
         cifar-10-batches-bin/data_batch_4.bin cifar-10-batches-bin/data_batch_5.bin cifar-10-batches-bin/test_batch.bin)
tar -xzf "$archive" -C "$data" "${members[@]}" || die "$archive: extraction failed (expected members ${members[*]})"
tar -xzf "$archive" -C "$data" cifar-10-batches-bin/batches.meta.txt 2>/dev/null || true
for m in "${members[@]}"; do
  size=$(stat -c %s "$data/$m")
  [ "$size" = 30730000 ] || die "$data/$m: $size bytes, expected 30730000 (10000 records of 3073 bytes)"
done
dataset="$data/cifar-10-batches-bin"
echo "extracted $dataset"

# (4) + (5) pretraining, then linear evaluation of the last checkpoint. An interrupted variant resumes from
# its newest checkpoint; a finished one goes straight to evaluation.
run_variant() {
  local name="$1" arch="$2" default_batch="$3" default_epochs="$4"
  local dir="$out/$name"
  local last=""
  if ls "$dir"/checkpoints/step-*.safetensors >/dev/null 2>&1; then
    last="$(ls "$dir"/checkpoints/step-*.safetensors | sort | tail -n 1)"
  fi
  if [ -f "$dir/summary.json" ] && grep -q '"status": "completed"' "$dir/summary.json"; then
    echo "== $name: pretraining already completed"
  elif [ -n "$last" ]; then
    echo "== $name: resuming from $last"
    "${trainer[@]}" pretrain --resume "$last" --out "$dir" --device "$device" --eval none
  else
    echo "== $name: pretraining"
    local args=(pretrain --dataset cifar10 --data "$dataset" --device "$device" --out "$dir" --eval none
      --arch "$arch" --stem cifar --batch-size "${batch:-$default_batch}" --epochs "${epochs:-$default_epochs}"
      --temperature 0.5 --augment cifar --color-strength 0.5 --blur 0
      --lr-scaling sqrt --base-lr 0.075 --weight-decay 1e-6 --knn-every 50)
    if [ -n "$width" ]; then args+=(--width "$width"); fi
    if [ -n "$train_subset" ]; then args+=(--train-subset "$train_subset"); fi
    if [ -n "$test_subset" ]; then args+=(--test-subset "$test_subset"); fi
    "${trainer[@]}" "${args[@]}"
  fi
  last="$(ls "$dir"/checkpoints/step-*.safetensors | sort | tail -n 1)"
  echo "== $name: linear evaluation of $last"
  local eval_args=(linear-eval --checkpoint "$last" --dataset cifar10 --data "$dataset" --device "$device")
  if [ -n "$train_subset" ]; then eval_args+=(--train-subset "$train_subset"); fi
  if [ -n "$test_subset" ]; then eval_args+=(--test-subset "$test_subset"); fi
  if [ -n "$linear_epochs" ]; then eval_args+=(--linear-epochs "$linear_epochs"); fi
  "${trainer[@]}" "${eval_args[@]}" | tee "$dir/linear-eval.txt"
}

if [ "$variant" = paper ] || [ "$variant" = all ]; then
  run_variant resnet50-1000ep resnet50 1024 1000
fi
if [ "$variant" = resnet18 ] || [ "$variant" = all ]; then
  run_variant resnet18-500ep resnet18 512 500
fi
echo "done: results in $out/*/linear-eval.txt (paper: 94.0% top-1 for ResNet-50, 1000 epochs)"
