#!/usr/bin/env bash
# Builds and runs the host-emulation drivers of kernels/*.cu (g++ with C++20). Exit status 0 when every
# check passes. Usage: tests/Cuda/Kernels/HostEmulation/run.sh [output-dir]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
status=0
for driver in ntxent_emu cosine_lars_emu elementwise_emu; do
  g++ -std=c++20 -O2 -Wall -Wno-unknown-pragmas -o "$out/$driver" "$here/$driver.cpp"
  SIMCLR_EMU_REVERSE=0 "$out/$driver" || status=1
  SIMCLR_EMU_REVERSE=1 "$out/$driver" || status=1
done
exit $status
