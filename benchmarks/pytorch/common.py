"""Shared timing for the PyTorch baselines, mirroring the C# harness (benchmarks/Measurement.cs):
untimed warm-up runs, calibration that batches very short calls into one sample, then the median,
min and p90 of at least 20 samples. On the GPU (--device cuda, the default) samples are timed with CUDA
events on the current stream; on the CPU (--device cpu) with perf_counter, on as many threads as the C#
CPU backend uses (every core, unless --threads says otherwise). Results are plain dicts with the same keys
as the C# suites' JSON, so benchmarks/compare.py can set them side by side. Works with torch 1.13 (Debian)
and 2.x; what needs 2.x is skipped with the reason.
"""
import argparse
import json
import math
import os
import platform
import sys
import time

import torch

MIN_SAMPLES = 20


def base_parser(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--samples", type=int, default=MIN_SAMPLES, help="timed samples (at least 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs")
    parser.add_argument("--smoke", action="store_true", help="one tiny size per benchmark")
    parser.add_argument("--json", default=None, help="write the results here as well as to stdout")
    parser.add_argument("--filter", default=None, help="only keys containing this text")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 in matmul and cuDNN (off: plain fp32, as the C# suites)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="where to run (cpu: beside the C# cpu suite)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core, as the C# CPU backend)")
    return parser


def check_args(args):
    if args.samples < MIN_SAMPLES:
        sys.exit(f"--samples must be at least {MIN_SAMPLES}")
    if args.device == "cpu":
        # Debian's torch starts with one thread on some machines; the C# backend uses every core.
        torch.set_num_threads(args.threads or os.cpu_count() or 1)
        return
    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA device visible to PyTorch", "results": []}))
        sys.exit(0)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32


def selected(args, key):
    return args.filter is None or args.filter.lower() in key.lower()


def has_compile():
    """torch.compile exists from torch 2.0 on."""
    return hasattr(torch, "compile")


def summarize(per_run_seconds, repetitions):
    ordered = sorted(per_run_seconds)
    n = len(ordered)
    median = ordered[n // 2] if n % 2 == 1 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])
    p90 = ordered[min(max(math.ceil(0.9 * n) - 1, 0), n - 1)]
    return {"median_s": median, "min_s": ordered[0], "p90_s": p90, "samples": n, "repetitions": repetitions}


def time_cuda(fn, samples, warmup, min_sample_s=2e-3):
    """Per-call statistics of fn() on the GPU, with CUDA events around each sample."""
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    single = float("inf")
    for _ in range(max(warmup, 1)):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        single = min(single, start.elapsed_time(stop) / 1e3)
    reps = 1 if single >= min_sample_s else int(min(1_000_000, math.ceil(min_sample_s / max(single, 1e-9))))
    per_run = []
    for _ in range(samples):
        start.record()
        for _ in range(reps):
            fn()
        stop.record()
        stop.synchronize()
        per_run.append(start.elapsed_time(stop) / 1e3 / reps)
    return summarize(per_run, reps)


def time_cpu(fn, samples, warmup, min_sample_s=2e-3):
    """Per-call statistics of fn() on the CPU, with perf_counter around each sample (CPU ops are synchronous)."""
    single = float("inf")
    for _ in range(max(warmup, 1)):
        t0 = time.perf_counter()
        fn()
        single = min(single, time.perf_counter() - t0)
    reps = 1 if single >= min_sample_s else int(min(1_000_000, math.ceil(min_sample_s / max(single, 1e-9))))
    per_run = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        per_run.append((time.perf_counter() - t0) / reps)
    return summarize(per_run, reps)


def time_device(args, fn):
    """fn() timed on args.device with args.samples and args.warmup."""
    return time_cpu(fn, args.samples, args.warmup) if args.device == "cpu" else time_cuda(fn, args.samples, args.warmup)


def time_host(next_batch, samples, warmup):
    """Per-call statistics of a host-side producer (the DataLoader), timed with perf_counter."""
    for _ in range(max(warmup, 1)):
        next_batch()
    per_run = []
    for _ in range(samples):
        t0 = time.perf_counter()
        next_batch()
        per_run.append(time.perf_counter() - t0)
    return summarize(per_run, 1)


def peak_memory(args, fn):
    """Peak bytes allocated by PyTorch's CUDA caching allocator while fn() runs (live inputs included);
    0 on the CPU, where torch keeps no such count."""
    if args.device == "cpu":
        return 0
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated()


def result(key, impl, timing, items=0, unit="", memory_bytes=0, note=None):
    s = timing["median_s"]
    row = {
        "key": key,
        "impl": impl,
        "median_ms": s * 1e3,
        "min_ms": timing["min_s"] * 1e3,
        "p90_ms": timing["p90_s"] * 1e3,
        "samples": timing["samples"],
        "repetitions_per_sample": timing["repetitions"],
        "memory_bytes": int(memory_bytes),
    }
    if items:
        row["items_per_second"] = items / s
        row["item_unit"] = unit
    if note:
        row["note"] = note
    return row


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(args):
    if args.device == "cpu":
        return f"{cpu_name()}, {torch.get_num_threads()} threads"
    return torch.cuda.get_device_name(0)


def emit(script, args, results, notes=()):
    report = {
        "script": script,
        "torch": torch.__version__,
        "device": device_name(args),
        "cuda": torch.version.cuda,
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "notes": list(notes),
        "results": results,
    }
    text = json.dumps(report, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    print(text)
