#!/usr/bin/env python3
"""Runs our benchmark suites and the PyTorch baselines (pytorch/*.py) on one machine and prints our
figures beside theirs, with ratios (and, on the GPU, the targets of the benchmark issue).

--device cuda (the default) compares our GPU suites (kernels, step) with PyTorch on the GPU; --device cpu
compares our cpu suite with PyTorch on the CPU, same shapes and keys, on every core on both sides.

Our side is the benchmark program: the GPU bundle's run-benchmarks.sh when this folder sits inside the
bundle (simclr-gpu/benchmarks/), else `dotnet run -c Release --project <repo>/benchmarks --` from a
source tree; --ours (or SIMCLR_BENCH) overrides the command, e.g. --ours simclr-gpu/run-benchmarks.sh
from a checkout beside an unpacked bundle; --ours-json reads results written earlier instead.
Their side needs a python3 with torch and torchvision: --python names it, else this interpreter if it has
torch, else Debian's /usr/bin/python3 if that has it; --torch-json reads earlier results instead.

  python3 benchmarks/compare.py                      # GPU, everything, full sizes
  python3 benchmarks/compare.py --smoke              # one tiny size each (checks the plumbing)
  python3 benchmarks/compare.py --device cpu         # the CPU suite beside PyTorch on the CPU
  python3 benchmarks/compare.py --ours simclr-gpu/run-benchmarks.sh --out results/
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ("ops", "ntxent", "augment", "lars", "step")
SUITES = {"cuda": ("kernels", "step"), "cpu": ("cpu",)}

# (key prefix, their impl, what is compared, minimum ratio theirs/ours): the GPU targets of the benchmark issue.
TARGETS = (
    ("ntxent.fwdbwd.rows8192.", "materialized", "time", 3.0),
    ("ntxent.fwdbwd.rows8192.", "materialized", "memory", 10.0),
    ("augment.", "dataloader-cpu", "time", 20.0),
    ("augment.", "tv2-gpu-batch", "time", 2.0),
    ("augment.", "tv2-gpu-per-image", "time", 2.0),
    ("lars.", "loop", "time", 5.0),
    ("step.", "eager-fp32", "time", 1.0),
)


def default_ours_command():
    if os.environ.get("SIMCLR_BENCH"):
        return shlex.split(os.environ["SIMCLR_BENCH"])
    # The GPU bundle's launcher when this folder sits inside the bundle (simclr-gpu/benchmarks/).
    for candidate in (os.path.join(HERE, "..", "run-benchmarks.sh"), os.path.join(HERE, "SimClr.Benchmarks")):
        if os.access(candidate, os.X_OK):
            return [os.path.abspath(candidate)]
    project = os.path.join(HERE, "SimClr.Benchmarks.csproj")
    if os.path.exists(project):
        return ["dotnet", "run", "-c", "Release", "--project", HERE, "--"]
    sys.exit("cannot find the benchmark program: pass --ours CMD or set SIMCLR_BENCH")


def has_torch(python):
    try:
        return subprocess.run([python, "-c", "import torch, torchvision"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        return False


def torch_python(requested):
    """The interpreter for the PyTorch scripts, or (None, why)."""
    if requested:
        return (requested, None) if has_torch(requested) else (None, f"--python {requested} cannot import torch and torchvision")
    for candidate in (sys.executable, "/usr/bin/python3"):
        if candidate and has_torch(candidate):
            return candidate, None
    return None, f"neither {sys.executable} nor /usr/bin/python3 can import torch and torchvision (pass --python)"


def run(command, env=None):
    print("$ " + " ".join(shlex.quote(c) for c in command), file=sys.stderr, flush=True)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env)
    sys.stderr.write(done.stdout[-4000:])
    return done.returncode


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ours_rows(args, failures):
    rows, devices = {}, []
    command = None if args.ours_json else shlex.split(args.ours) if args.ours else default_ours_command()
    for suite in SUITES[args.device]:
        path = os.path.join(args.ours_json or args.out, f"results-{suite}.json")
        if not args.ours_json:
            if os.path.exists(path):
                os.remove(path)  # never report an earlier run's figures as this run's
            extra = ["--smoke"] if args.smoke else []
            code = run(command + [suite, "--json", path] + extra)
            if code != 0:
                failures.append(f"our {suite} suite exited with {code}")
        report = load(path)
        if report is None:
            failures.append(f"no results for our {suite} suite at {path}")
            continue
        devices.append(report.get("Device", ""))
        for r in report.get("Results", []):
            rows[r["Key"]] = {"ms": r["MedianMs"], "min_ms": r["MinMs"], "memory": r.get("MemoryBytes", 0)}
    return rows, devices


def torch_rows(args, failures, notes):
    rows, devices = [], []
    python = None
    if not args.torch_json:
        python, why = torch_python(args.python)
        if python is None:
            failures.append(f"PyTorch side skipped: {why}")
            return rows, devices
    env = None
    if args.device == "cpu" and "OMP_WAIT_POLICY" not in os.environ:
        # PyTorch's OpenMP threads spin while they wait; on a machine shared with other work a spinning
        # thread holds the core its partner needs, and a tiny step took 12.4 s instead of 58 ms here.
        # Passive waiting (what the .NET thread pool does after a short spin) measures the ops instead.
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
        notes.append("PyTorch ran with OMP_WAIT_POLICY=PASSIVE (set OMP_WAIT_POLICY to override)")
    for script in SCRIPTS:
        path = os.path.join(args.torch_json or args.out, f"torch-{script}.json")
        if not args.torch_json:
            if os.path.exists(path):
                os.remove(path)
            command = [python, os.path.join(HERE, "pytorch", f"{script}.py"), "--json", path, "--device", args.device]
            if args.smoke:
                command.append("--smoke")
            if args.tf32:
                command.append("--tf32")
            if script == "augment" and args.workers is not None:
                command += ["--workers", str(args.workers)]
            if script == "step" and args.no_compile:
                command.append("--no-compile")
            if run(command, env) != 0:
                failures.append(f"pytorch/{script}.py failed")
        report = load(path)
        if report is None:
            continue
        if report.get("skipped"):
            failures.append(f"pytorch/{script}.py skipped: {report['skipped']}")
        devices.append(f"torch {report.get('torch')} on {report.get('device')}")
        notes.extend(f"pytorch/{script}.py: {n}" for n in report.get("notes", []))
        rows.extend(report.get("results", []))
    return rows, sorted(set(devices))


def ratio(theirs, mine):
    return theirs / mine if theirs and mine else None


def fmt(value, spec):
    return "" if value is None else format(value, spec)


def compare(ours, theirs, device):
    gpu = device == "cuda"
    lines = [
        "| workload | ours ms | ours MiB | PyTorch impl | PyTorch ms | PyTorch MiB | speed-up | at min | memory ratio |" + (" target |" if gpu else ""),
        "|---|---:|---:|---|---:|---:|---:|---:|---:|" + ("---|" if gpu else ""),
    ]
    table = []
    for t in theirs:
        mine = ours.get(t["key"])
        speed = ratio(t["median_ms"], mine["ms"]) if mine else None
        # Fastest sample against fastest sample: on a shared machine the closer estimate of what each side can do.
        speed_min = ratio(t.get("min_ms"), mine["min_ms"]) if mine else None
        mem = ratio(t.get("memory_bytes", 0), mine["memory"]) if mine else None
        verdicts = []
        for prefix, impl, what, minimum in TARGETS if gpu else ():
            if t["key"].startswith(prefix) and t["impl"] == impl:
                value = speed if what == "time" else mem
                state = "n/a" if value is None else ("met" if value >= minimum else "NOT met")
                verdicts.append(f"{what} ≥ {minimum:g}×: {state}")
        row = {
            "key": t["key"], "impl": t["impl"], "theirs_ms": t["median_ms"], "theirs_memory": t.get("memory_bytes", 0),
            "ours_ms": mine["ms"] if mine else None, "ours_memory": mine["memory"] if mine else None,
            "speedup": speed, "speedup_at_min": speed_min, "memory_ratio": mem, "targets": verdicts,
        }
        table.append(row)
        cells = [t["key"], fmt(row["ours_ms"], ".4g"), fmt(mine["memory"] / 2**20 if mine and mine["memory"] else None, ".1f"),
                 t["impl"], fmt(t["median_ms"], ".4g"), fmt(t.get("memory_bytes", 0) / 2**20 or None, ".1f"),
                 fmt(speed, ".2f") + ("×" if speed else ""), fmt(speed_min, ".2f") + ("×" if speed_min else ""), fmt(mem, ".1f") + ("×" if mem else "")]
        if gpu:
            cells.append("; ".join(verdicts))
        lines.append("| " + " | ".join(cells) + " |")
    for key, mine in sorted(ours.items()):
        if key.startswith("step.") and not key.endswith(".train"):
            lines.append(f"| {key} (augment included) | {mine['ms']:.4g} | {mine['memory'] / 2**20:.1f} | compare with the .train rows | | | | | |" + (" |" if gpu else ""))
    return "\n".join(lines), table


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="compare on the GPU (kernels, step suites) or the CPU (cpu suite)")
    parser.add_argument("--ours", help="command that runs our benchmark program (suite and options are appended)")
    parser.add_argument("--ours-json", help="folder with our results-<suite>.json from an earlier run")
    parser.add_argument("--torch-json", help="folder with torch-*.json from an earlier run")
    parser.add_argument("--python", help="python3 with torch and torchvision for the PyTorch side")
    parser.add_argument("--out", default=os.path.join(os.getcwd(), "compare-results"), help="where the JSON files and compare.md go")
    parser.add_argument("--smoke", action="store_true", help="one tiny size each (checks the plumbing)")
    parser.add_argument("--tf32", action="store_true", help="let PyTorch use TF32 (off by default: plain fp32 on both sides)")
    parser.add_argument("--workers", type=int, help="DataLoader workers for the CPU augmentation pipeline")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile step variant")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    failures, notes = [], []
    started = time.time()
    ours, our_devices = ours_rows(args, failures)
    theirs, their_devices = torch_rows(args, failures, notes)
    markdown, table = compare(ours, theirs, args.device)
    header = (f"## SimClr.Native vs PyTorch ({args.device}{', smoke sizes' if args.smoke else ''})\n\n"
              f"- ours: {'; '.join(our_devices) or 'no results'}\n- PyTorch: {'; '.join(their_devices) or 'no results'}\n"
              f"- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {time.time() - started:.0f} s\n\n"
              "speed-up = PyTorch median / ours (above 1: ours is faster); at min = the same for the fastest samples; "
              "memory ratio = PyTorch peak / ours.\n\n")
    footer = "".join(f"\n- note: {n}" for n in notes) + "".join(f"\n- PROBLEM: {f}" for f in failures)
    print(header + markdown + footer)
    with open(os.path.join(args.out, "compare.md"), "w") as f:
        f.write(header + markdown + "\n" + footer + "\n")
    with open(os.path.join(args.out, "compare.json"), "w") as f:
        json.dump({"device": args.device, "smoke": args.smoke, "ours": our_devices, "theirs": their_devices,
                   "rows": table, "notes": notes, "problems": failures}, f, indent=2)
    matched = sum(1 for r in table if r["ours_ms"] is not None)
    if failures or matched == 0:
        print(f"\n{len(failures)} problem(s), {matched} matched row(s): see above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
