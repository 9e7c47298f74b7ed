"""Shared timing for the PyTorch baselines, mirroring the C# harness (benchmarks/Measurement.cs):
untimed warm-up runs, calibration that batches very short calls into one sample, then the median,
min and p90 of at least 20 samples, timed with CUDA events on the current stream. Results are plain
dicts with the same keys as the C# suites' JSON, so benchmarks/compare.py can set them side by side.
"""
import argparse
import json
import math
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
    return parser


def check_args(args):
    if args.samples < MIN_SAMPLES:
        sys.exit(f"--samples must be at least {MIN_SAMPLES}")
    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA device visible to PyTorch", "results": []}))
        sys.exit(0)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32


def selected(args, key):
    return args.filter is None or args.filter.lower() in key.lower()


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


def peak_memory(fn):
    """Peak bytes allocated by PyTorch's caching allocator while fn() runs (live inputs included)."""
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


def emit(script, args, results, notes=()):
    report = {
        "script": script,
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0),
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
