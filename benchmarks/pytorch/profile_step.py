"""Where PyTorch's CPU training step spends its time, grouped like `SimClr.Benchmarks profile` groups ours:
the step of step.py (eager fp32 forward + NT-Xent + backward + foreach LARS) for a ResNet-18 CIFAR model of
the given width and batch, under torch.profiler; each aten op's self CPU time is put into one group
(convolution forward, convolution backward, batch norm forward/backward, linear, ReLU, optimizer, autograd
and other), per step. Prints a markdown table.

  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 benchmarks/pytorch/profile_step.py --width 1 --batch 32 --steps 5
(On a machine shared with other work, spinning OpenMP threads collapse: set OMP_WAIT_POLICY=PASSIVE, as
compare.py does for the CPU; libgomp reads it when it loads, so it must be set before python starts.)
"""
import argparse
import os
import time

import torch

import lars
import models
import ntxent

GROUPS = (
    # (group, substrings of aten op names), first match wins
    ("conv backward", ("convolution_backward", "mkldnn_convolution_backward", "thnn_conv2d_backward", "slow_conv2d_backward")),
    ("conv forward", ("convolution", "conv2d")),
    ("batch norm backward", ("batch_norm_backward",)),
    ("batch norm forward", ("batch_norm",)),
    ("linear (matmul)", ("addmm", "mm", "matmul", "linear")),
    ("relu", ("relu", "threshold")),
    ("optimizer (foreach LARS)", ("_foreach",)),
    ("nt-xent (normalize, masked logits, cross-entropy)", ("softmax", "nll_loss", "masked_fill", "norm", "div", "eye", "clamp")),
    ("residual add / copies / fills", ("add", "copy_", "fill_", "zero_", "empty", "mul", "sum", "mean")),
)


def group_of(name):
    for group, keys in GROUPS:
        if any(k in name for k in keys):
            return group
    return "other"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    torch.manual_seed(0)
    model = models.SimClr("resnet18", True, args.width)
    views = torch.randn(2 * args.batch, 3, 32, 32)
    params, flags = models.lars_groups(model)
    moms = [torch.zeros_like(p) for p in params]

    def step():
        for p in params:
            p.grad = None
        loss = ntxent.nt_xent(model(views), 0.5)
        loss.backward()
        lars.lars_foreach(params, [p.grad for p in params], moms, flags)

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    step_ms = (time.perf_counter() - t0) * 1e3 / args.steps
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    totals = {}
    for event in prof.key_averages():
        if not event.key.startswith("aten::"):
            continue
        group = group_of(event.key[len("aten::"):])
        totals[group] = totals.get(group, 0.0) + event.self_cpu_time_total / 1e3 / args.steps
    profiled = sum(totals.values())
    print(f"PyTorch {torch.__version__}, ResNet-18 CIFAR x{args.width:g}, B = {args.batch} ({2 * args.batch} views of 32x32), "
          f"{torch.get_num_threads()} threads: {step_ms:.1f} ms per step unprofiled, {profiled:.1f} ms of aten self time per profiled step")
    print("| op group | ms/step | % of aten time |")
    print("|---|---:|---:|")
    for group, ms in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"| {group} | {ms:.1f} | {100 * ms / profiled:.1f} |")


if __name__ == "__main__":
    main()
