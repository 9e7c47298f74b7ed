#!/usr/bin/env python3
"""Runs our GPU suites (kernels, step) and the PyTorch baselines (pytorch/*.py) on one machine and
prints our figures beside theirs, with ratios and the targets of the benchmark issue.

Our side is the benchmark program: the GPU bundle's run-benchmarks.sh when this folder sits inside the
bundle (simclr-gpu/benchmarks/), else `dotnet run -c Release --project <repo>/benchmarks --` from a
source tree; --ours (or SIMCLR_BENCH) overrides the command, e.g. --ours simclr-gpu/run-benchmarks.sh
from a checkout beside an unpacked bundle; --ours-json reads results written earlier instead.
Their side needs python3 with torch and torchvision; --torch-json reads earlier results instead.

  python3 benchmarks/compare.py                      # everything, full sizes
  python3 benchmarks/compare.py --smoke              # one tiny size each
  python3 benchmarks/compare.py --ours simclr-gpu/run-benchmarks.sh --out results/
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ("ntxent", "augment", "lars", "step")
SUITES = ("kernels", "step")

# (key prefix, their impl, what is compared, minimum ratio theirs/ours)
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


def run(command):
    print("$ " + " ".join(shlex.quote(c) for c in command), file=sys.stderr, flush=True)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    sys.stderr.write(done.stdout[-4000:])
    return done.returncode


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ours_rows(args):
    rows = {}
    command = shlex.split(args.ours) if args.ours else None
    for suite in SUITES:
        path = os.path.join(args.ours_json or args.out, f"results-{suite}.json")
        if not args.ours_json:
            if os.path.exists(path):
                os.remove(path)  # never report an earlier run's figures as this run's
            extra = ["--smoke"] if args.smoke else []
            code = run((command or default_ours_command()) + [suite, "--json", path] + extra)
            if code != 0:
                print(f"our {suite} suite exited with {code}", file=sys.stderr)
        report = load(path)
        if report is None:
            print(f"no results for our {suite} suite at {path} (no CUDA device, or it failed)", file=sys.stderr)
            continue
        for r in report.get("Results", []):
            rows[r["Key"]] = {"ms": r["MedianMs"], "memory": r.get("MemoryBytes", 0), "device": report.get("Device", "")}
    return rows


def torch_rows(args):
    rows = []
    for script in SCRIPTS:
        path = os.path.join(args.torch_json or args.out, f"torch-{script}.json")
        if not args.torch_json:
            if os.path.exists(path):
                os.remove(path)
            command = [sys.executable, os.path.join(HERE, "pytorch", f"{script}.py"), "--json", path]
            if args.smoke:
                command.append("--smoke")
            if args.tf32:
                command.append("--tf32")
            if script == "augment" and args.workers is not None:
                command += ["--workers", str(args.workers)]
            if script == "step" and args.no_compile:
                command.append("--no-compile")
            if run(command) != 0:
                print(f"pytorch/{script}.py failed", file=sys.stderr)
        report = load(path)
        if report is None:
            continue
        rows.extend(report.get("results", []))
    return rows


def ratio(theirs, mine):
    return theirs / mine if theirs and mine else None


def fmt(value, spec):
    return "" if value is None else format(value, spec)


def compare(ours, theirs):
    lines = [
        "| workload | ours ms | ours MiB | PyTorch impl | PyTorch ms | PyTorch MiB | speed-up | memory ratio | target |",
        "|---|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    table = []
    for t in theirs:
        mine = ours.get(t["key"])
        speed = ratio(t["median_ms"], mine["ms"]) if mine else None
        mem = ratio(t.get("memory_bytes", 0), mine["memory"]) if mine else None
        verdicts = []
        for prefix, impl, what, minimum in TARGETS:
            if t["key"].startswith(prefix) and t["impl"] == impl:
                value = speed if what == "time" else mem
                state = "n/a" if value is None else ("met" if value >= minimum else "NOT met")
                verdicts.append(f"{what} ≥ {minimum:g}×: {state}")
        row = {
            "key": t["key"], "impl": t["impl"], "theirs_ms": t["median_ms"], "theirs_memory": t.get("memory_bytes", 0),
            "ours_ms": mine["ms"] if mine else None, "ours_memory": mine["memory"] if mine else None,
            "speedup": speed, "memory_ratio": mem, "targets": verdicts,
        }
        table.append(row)
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            t["key"], fmt(row["ours_ms"], ".4g"), fmt(mine["memory"] / 2**20 if mine and mine["memory"] else None, ".1f"),
            t["impl"], fmt(t["median_ms"], ".4g"), fmt(t.get("memory_bytes", 0) / 2**20 or None, ".1f"),
            fmt(speed, ".2f") + ("×" if speed else ""), fmt(mem, ".1f") + ("×" if mem else ""), "; ".join(verdicts)))
    for key, mine in sorted(ours.items()):
        if key.startswith("step.") and not key.endswith(".train"):
            lines.append(f"| {key} (augment included) | {mine['ms']:.4g} | {mine['memory'] / 2**20:.1f} | compare with the .train rows | | | | | |")
    return "\n".join(lines), table


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ours", help="command that runs our benchmark program (suite and options are appended)")
    parser.add_argument("--ours-json", help="folder with results-kernels.json and results-step.json from an earlier run")
    parser.add_argument("--torch-json", help="folder with torch-*.json from an earlier run")
    parser.add_argument("--out", default=os.path.join(os.getcwd(), "compare-results"), help="where the JSON files and compare.md go")
    parser.add_argument("--smoke", action="store_true", help="one tiny size each (checks the plumbing)")
    parser.add_argument("--tf32", action="store_true", help="let PyTorch use TF32 (off by default: plain fp32 on both sides)")
    parser.add_argument("--workers", type=int, help="DataLoader workers for the CPU augmentation pipeline")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile step variant")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    ours = ours_rows(args)
    theirs = torch_rows(args)
    markdown, table = compare(ours, theirs)
    header = "## SimClr.Native vs PyTorch\n\nspeed-up = PyTorch median / ours; memory ratio = PyTorch peak / ours.\n\n"
    print(header + markdown)
    with open(os.path.join(args.out, "compare.md"), "w") as f:
        f.write(header + markdown + "\n")
    with open(os.path.join(args.out, "compare.json"), "w") as f:
        json.dump(table, f, indent=2)
    if not ours or not theirs:
        print("\nnothing to compare on one side (see the messages above)", file=sys.stderr)


if __name__ == "__main__":
    main()
