#!/usr/bin/env bash
# Builds and runs the host-emulation drivers of kernels/*.cu (g++ with C++20), each once with a block's
# threads scheduled in increasing and once in decreasing order. Exit status 0 when every check passes.
# Usage: tests/Cuda/Kernels/HostEmulation/run.sh [--sanitize] [output-dir]
#   --sanitize  also build with AddressSanitizer and UndefinedBehaviorSanitizer, so that any out-of-bounds
#               access of a kernel to the drivers' exactly-sized buffers (or shared arrays) is reported
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
flags=(-std=c++20 -O2 -Wall -Wno-unknown-pragmas)
if [ "${1:-}" = "--sanitize" ]; then
  flags=(-std=c++20 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -Wall -Wno-unknown-pragmas)
  # ASan warns once that it does not fully support swapcontext; the fibers switch only between barriers.
  export ASAN_OPTIONS=detect_stack_use_after_return=0
  shift
fi
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
status=0
for driver in ntxent_emu cosine_lars_emu elementwise_emu pool_emu syncbn_emu; do
  g++ "${flags[@]}" -o "$out/$driver" "$here/$driver.cpp"
  SIMCLR_EMU_REVERSE=0 "$out/$driver" || status=1
  SIMCLR_EMU_REVERSE=1 "$out/$driver" || status=1
done
exit $status
