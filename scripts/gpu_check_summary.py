#!/usr/bin/env python3
"""Turns a gpu-check.sh work folder into the few small files it hands back (see gpu-check.sh): summary.md
(the verdict and what failed first, the stage table, tests, kernel modules, benchmarks, the PyTorch
comparison, training, and the rows to paste into tests/GPU-RESULTS.md and benchmarks/RESULTS.md),
device.txt, tests.ctrf.json, benchmarks.json, compare.md, train.json and logs.txt (each stage's log tail).
Every input may be missing (a stage that was skipped, timed out or never wrote its file): the summary
says so instead of failing. Standard library only.
"""
import argparse
import glob
import json
import os
import shutil
import time

LOG_TAIL = 60_000
TESTS_LOG_TAIL = 400_000


def read(path, tail=None):
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return text[-tail:] if tail and len(text) > tail else text


def load(path):
    text = read(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def stages(work):
    rows = []
    for line in (read(os.path.join(work, "stages.tsv")) or "").splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            rows.append({"name": parts[0], "status": parts[1], "seconds": parts[2], "exit": parts[3]})
    return rows


def device_facts(work):
    device = load(os.path.join(work, "device.json")) or {}
    facts = {"gpu": None, "driver": None, "libraries": device.get("libraries", []), "modules": device.get("kernel_modules", {}),
             "backend": device.get("backend"), "verdict": device.get("verdict"), "checks": device.get("checks", {})}
    devices = device.get("devices") or []
    if devices:
        # "cuda:0 NVIDIA H200, compute capability 9.0, 139.8 GiB, 132 SMs"
        facts["gpu"] = devices[0].split(" ", 1)[1].split(",")[0]
    facts["driver"] = device.get("driver")
    env = read(os.path.join(work, "env.log")) or ""
    for line in env.splitlines():
        if line.startswith("nvidia-smi:") and "not on PATH" not in line:
            fields = [f.strip() for f in line.split(":", 1)[1].split(";")[0].split(",")]
            if len(fields) >= 2:
                facts["gpu"] = facts["gpu"] or fields[0]
                facts["driver_release"] = fields[1]
    return facts


def tests_summary(work):
    report = load(os.path.join(work, "tests.ctrf.json"))
    if report is None:
        return None
    results = report.get("results", {})
    tests = results.get("tests", [])
    failed = [t for t in tests if t.get("status") == "failed"]
    skipped = {}
    for t in tests:
        if t.get("status") == "skipped":
            reason = (t.get("message") or "no reason given").splitlines()[0][:200]
            skipped[reason] = skipped.get(reason, 0) + 1
    return {"summary": results.get("summary", {}), "failed": failed, "skipped": skipped}


def bench_reports(work):
    reports = {}
    for size in ("smoke", "full"):
        for path in sorted(glob.glob(os.path.join(work, f"bench-{size}", "results-*.json"))):
            report = load(path)
            if report is not None:
                reports[f"{size}/{os.path.basename(path)[len('results-'):-len('.json')]}"] = report
    return reports


def first_line(text):
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("work", "out", "mode", "layout", "commit", "verdict", "seconds", "budget"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args()
    work, out = args.work, args.out
    rows = stages(work)
    facts = device_facts(work)
    tests = tests_summary(work)
    benches = bench_reports(work)
    compare = load(os.path.join(work, "compare", "compare.json"))
    compare_md = read(os.path.join(work, "compare", "compare.md"))
    train = load(os.path.join(work, "train", "summary.json"))
    date = time.strftime("%Y-%m-%d", time.gmtime())
    gpu = facts["gpu"] or ("CPU rehearsal" if args.mode == "cpu" else "no GPU")
    driver = facts.get("driver_release") or facts["driver"] or "—"

    md = [f"# gpu-check: {args.verdict}", ""]
    md.append(f"{date}, commit {args.commit} ({args.layout}), {gpu}, driver {driver}, mode {args.mode}, "
              f"{args.seconds} s of a {args.budget} s budget")
    md.append("")
    no_device = args.verdict.startswith("no usable CUDA device")
    bad = [] if no_device else [r for r in rows if not r["status"].startswith("ok")]
    if bad:
        md.append("## What failed first")
        md.append("")
        for r in bad:
            log = read(os.path.join(work, f"{r['name']}.log"), 4000) or ""
            tail = [l for l in log.splitlines() if l.strip()][-6:]
            md.append(f"- **{r['name']}**: {r['status']}")
            if r["name"] == "tests" and tests:
                for t in tests["failed"][:15]:
                    md.append(f"  - {t.get('name')}: {first_line(t.get('message'))}")
                if len(tests["failed"]) > 15:
                    md.append(f"  - … and {len(tests['failed']) - 15} more (tests.ctrf.json)")
            elif tail:
                md.append("  ```")
                md.extend(f"  {l[:300]}" for l in tail)
                md.append("  ```")
        md.append("")

    md += ["## Stages", "", "| stage | status | seconds | exit |", "|---|---|---:|---:|"]
    md += [f"| {r['name']} | {r['status']} | {r['seconds']} | {r['exit']} |" for r in rows]
    md.append("")

    md += ["## Device", ""]
    md.append(f"- verdict of the device probe: {facts['verdict'] or 'none (the probe did not finish)'}")
    if facts["backend"]:
        md.append(f"- backend: {facts['backend']}")
    for lib in facts["libraries"]:
        md.append(f"- loaded {lib}")
    for module, how in sorted(facts["modules"].items()):
        md.append(f"- kernel module {module}: {how}")
    for check, error in sorted(facts["checks"].items()):
        md.append(f"- first op {check}: relative error {error:.2e}")
    md.append("")

    if no_device:
        md += ["Nothing else ran: without a usable CUDA device every later stage would only repeat this reason.", ""]
    details = []
    details += ["## Tests (CUDA and NVRTC classes" + (", SIMCLR_REQUIRE_CUDA=1)" if args.mode == "gpu" else ", rehearsal: skips allowed)"), ""]
    if tests is None:
        details.append("no test report (tests.ctrf.json missing: the stage did not finish)")
    else:
        s = tests["summary"]
        details.append(f"{s.get('passed', 0)} passed, {s.get('failed', 0)} failed, {s.get('skipped', 0)} skipped of {s.get('tests', 0)}")
        for reason, count in sorted(tests["skipped"].items(), key=lambda kv: -kv[1]):
            details.append(f"- skipped ×{count}: {reason}")
    details.append("")

    details += ["## Our benchmarks", ""]
    if not benches:
        details.append("no benchmark results")
    for name, report in benches.items():
        details.append(f"### {name} ({report.get('Device', '')})")
        details.append("")
        details.append("| benchmark | median ms | min ms | % roofline | throughput |")
        details.append("|---|---:|---:|---:|---|")
        for r in report.get("Results", []):
            rate = f"{r['ItemsPerSecond']:.4g} {r.get('ItemUnit') or ''}/s" if r.get("ItemsPerSecond") else ""
            details.append(f"| {r['Key']} | {r['MedianMs']:.4g} | {r['MinMs']:.4g} | {r.get('RooflinePercent', 0):.1f} | {rate} |")
        for f in report.get("Failures", []):
            details.append(f"- FAILED {f}")
        for n in report.get("Notes", []):
            if n.startswith("WARNING") or n.startswith("skipped"):
                details.append(f"- {n}")
        details.append("")

    details += ["## PyTorch side by side", ""]
    details.append(compare_md.strip() if compare_md else "no comparison (the stage did not finish)")
    details.append("")

    details += ["## Training", ""]
    if train is None:
        details.append("no training summary (the stage did not finish)")
    else:
        keys = ("device", "epochs", "images_per_second", "linear_top1", "random_linear_top1", "knn_top1", "status")
        details.append(", ".join(f"{k} {train[k]}" for k in keys if k in train))
    details.append("")

    if not no_device:
        md += details

    passed = failed = skipped = "—"
    if tests is not None:
        s = tests["summary"]
        passed, failed, skipped = s.get("passed", 0), s.get("failed", 0), s.get("skipped", 0)
    notes = [args.verdict]
    if facts["modules"]:
        images = sorted({how.split(",")[1].strip().split(" ")[0] for how in facts["modules"].values() if "," in how})
        notes.append(f"kernels: {'/'.join(images)}")
    if train and "images_per_second" in train:
        notes.append(f"train {train['images_per_second']:.0f} img/s")
    md += ["## Rows to paste", "", "tests/GPU-RESULTS.md:", "", "```",
           f"| {date} | {gpu} | {driver} | {args.commit} | {passed} | {failed} | {skipped} | {'; '.join(notes)} |", "```", ""]
    md += ["benchmarks/RESULTS.md: a section headed with the GPU's name, holding the tables of \"Our benchmarks\" "
           "(full sizes where present) and \"PyTorch side by side\" above, with the date, commit and driver line.", ""]

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    with open(os.path.join(out, "device.txt"), "w") as f:
        for name in ("env", "device", "info"):
            f.write(f"==== {name} ====\n{read(os.path.join(work, f'{name}.log'), LOG_TAIL) or '(no output)'}\n")
    if os.path.exists(os.path.join(work, "tests.ctrf.json")):
        shutil.copyfile(os.path.join(work, "tests.ctrf.json"), os.path.join(out, "tests.ctrf.json"))
    torch = {os.path.basename(p)[len("torch-"):-len(".json")]: load(p) for p in sorted(glob.glob(os.path.join(work, "compare", "torch-*.json")))}
    if benches or torch or compare:
        with open(os.path.join(out, "benchmarks.json"), "w") as f:
            json.dump({"ours": benches, "torch": torch, "compare": compare}, f, indent=1)
    if compare_md:
        with open(os.path.join(out, "compare.md"), "w") as f:
            f.write(compare_md)
    metrics = read(os.path.join(work, "train", "metrics.jsonl"))
    if train is not None or metrics is not None:
        with open(os.path.join(out, "train.json"), "w") as f:
            json.dump({"summary": train, "config": load(os.path.join(work, "train", "config.json")),
                       "metrics_tail": (metrics or "").splitlines()[-30:]}, f, indent=1)
    with open(os.path.join(out, "logs.txt"), "w") as f:
        for r in rows:
            log = read(os.path.join(work, f"{r['name']}.log"), TESTS_LOG_TAIL if r["name"] == "tests" else LOG_TAIL)
            if log is not None:
                f.write(f"==== {r['name']}: {r['status']} ({r['seconds']} s) ====\n{log}\n")


if __name__ == "__main__":
    main()
