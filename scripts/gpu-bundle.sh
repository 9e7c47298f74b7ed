#!/usr/bin/env bash
# Builds a portable bundle for a Linux x86-64 CUDA host that has no .NET SDK: the .NET runtime (host,
# hostfxr, Microsoft.NETCore.App), the framework-dependent training, test and benchmark programs published
# into one folder (they share their dependencies), and the entry scripts:
#   gpu-check.sh OUTDIR       the first-contact check (scripts/gpu-check.sh): every CUDA path, a verdict and
#                             a handful of small files in OUTDIR within 8 minutes; exit 2 without a GPU
#   run.sh [args]             the training program (e.g. ./run.sh info)
#   run-tests.sh [args]       the xunit v3 test program; prints its summary, exit code = failures
#   run-benchmarks.sh [args]  the benchmark program (suites, and `device`)
# plus benchmarks/compare.py with the PyTorch baselines (and python/simclr_native.py, which builds their
# models), scripts/reproduce-cifar10.sh (a test runs it) and
# COMMIT (the commit it was built from). The scripts set DOTNET_ROOT to the bundled runtime.
# cuBLAS/cuDNN/NVRTC are found by the program's resolver (SIMCLR_CUDA_LIBRARY_PATH, the loader path,
# /usr/local/cuda, NVIDIA's Python wheels); the scripts also add the nvidia/*/lib folders of the host's
# python3, if any, to SIMCLR_CUDA_LIBRARY_PATH (CUDA 12 wheels: nvidia/cublas/lib, ...; CUDA 13 wheels:
# nvidia/cu13/lib and nvidia/cudnn/lib).
# Usage: scripts/gpu-bundle.sh [output.tar.xz]   (default dist/simclr-gpu-bundle.tar.xz)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${1:-$root/dist/simclr-gpu-bundle.tar.xz}
limit_mib=60

dotnet_root=${DOTNET_ROOT:-$(dirname "$(readlink -f "$(command -v dotnet)")")}
runtime_version=$(dotnet --list-runtimes | awk '$1 == "Microsoft.NETCore.App" { v = $2 } END { print v }')
[ -n "$runtime_version" ] || { echo "no Microsoft.NETCore.App runtime found under $dotnet_root" >&2; exit 1; }
fxr_version=$(ls "$dotnet_root/host/fxr" | sort -V | tail -n 1)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
bundle=$stage/simclr-gpu
mkdir -p "$bundle/dotnet/shared/Microsoft.NETCore.App" "$bundle/dotnet/host/fxr" "$bundle/app"

echo "== runtime $runtime_version (hostfxr $fxr_version) from $dotnet_root"
cp "$dotnet_root/dotnet" "$bundle/dotnet/"
cp -r "$dotnet_root/host/fxr/$fxr_version" "$bundle/dotnet/host/fxr/"
cp -r "$dotnet_root/shared/Microsoft.NETCore.App/$runtime_version" "$bundle/dotnet/shared/Microsoft.NETCore.App/"

for project in src/Training/SimClr.Training.csproj tests/SimClr.Tests.csproj benchmarks/SimClr.Benchmarks.csproj; do
  echo "== publish $project"
  dotnet publish "$project" -c Release --no-self-contained -r linux-x64 -p:DebugType=none -o "$bundle/app" -nologo -v quiet
done
# Only Linux x86-64 natives are needed.
rm -rf "$bundle/app/runtimes/"{win,osx,linux-arm,linux-arm64,linux-musl}* 2>/dev/null || true

write_launcher() {
  local name=$1 dll=$2 tail=$3
  cat > "$bundle/$name" <<EOF
#!/usr/bin/env bash
# Runs $dll on the bundled .NET runtime.
set -uo pipefail
here=\$(cd "\$(dirname "\$0")" && pwd)
export DOTNET_ROOT="\$here/dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# NVIDIA's Python wheels of this host's python3 (CUDA 12: nvidia-cublas-cu12, ...; CUDA 13: nvidia-cublas,
# nvidia-cuda-nvrtc, nvidia-cudnn-cu13, which use nvidia/cu13/lib and nvidia/cudnn/lib).
if command -v python3 >/dev/null 2>&1; then
  wheels=\$(python3 - <<'PY' 2>/dev/null
import glob, os, site, sys
roots = set(site.getsitepackages() + [site.getusersitepackages()] + sys.path)
print(":".join(sorted({d for r in roots if r for d in glob.glob(os.path.join(r, "nvidia", "*", "lib")) if os.path.isdir(d)})))
PY
)
  [ -n "\$wheels" ] && export SIMCLR_CUDA_LIBRARY_PATH="\${SIMCLR_CUDA_LIBRARY_PATH:+\$SIMCLR_CUDA_LIBRARY_PATH:}\$wheels"
fi
$tail
EOF
  chmod +x "$bundle/$name"
}
write_launcher run.sh SimClr.Training.dll 'exec "$DOTNET_ROOT/dotnet" "$here/app/SimClr.Training.dll" "$@"'
write_launcher run-benchmarks.sh SimClr.Benchmarks.dll 'exec "$DOTNET_ROOT/dotnet" "$here/app/SimClr.Benchmarks.dll" "$@"'
write_launcher run-tests.sh SimClr.Tests.dll '"$DOTNET_ROOT/dotnet" "$here/app/SimClr.Tests.dll" -noColor "$@"
rc=$?
echo "run-tests.sh: exit code $rc (0 = all passed; GPU tests skip with a reason when no device is usable)"
exit $rc'

# The PyTorch baselines and the side-by-side runner, so the bundle alone compares ours with theirs:
# simclr-gpu/benchmarks/compare.py finds ../run-benchmarks.sh, and pytorch/models.py ../../python.
mkdir -p "$bundle/benchmarks" "$bundle/python"
cp "$root/benchmarks/compare.py" "$bundle/benchmarks/"
cp -r "$root/benchmarks/pytorch" "$bundle/benchmarks/"
rm -rf "$bundle/benchmarks/pytorch/__pycache__"
cp "$root/python/simclr_native.py" "$bundle/python/"

# The first-contact check, and what tests need beside the test program.
cp "$root/scripts/gpu-check.sh" "$root/scripts/gpu_check_summary.py" "$bundle/"
mkdir -p "$bundle/scripts"
cp "$root/scripts/reproduce-cifar10.sh" "$bundle/scripts/"
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain 2>/dev/null)" ]; then commit="$commit+changes"; fi
echo "$commit" > "$bundle/COMMIT"

mkdir -p "$(dirname "$out")"
echo "== pack $out"
tar -C "$stage" -cf - simclr-gpu | xz -T0 -6 > "$out"
bytes=$(stat -c %s "$out")
mib=$(( (bytes + 1048575) / 1048576 ))
echo "bundle: $out ($bytes bytes, ${mib} MiB; unpacked $(du -sh "$bundle" | cut -f1))"
if [ "$bytes" -ge $(( limit_mib * 1048576 )) ]; then
  echo "bundle exceeds ${limit_mib} MiB" >&2
  exit 1
fi
echo "use: tar -xJf $(basename "$out") -C /tmp && /tmp/simclr-gpu/gpu-check.sh OUTDIR"
