"""Full SimCLR training-step baselines: forward of 2B views through encoder + head, NT-Xent over the
materialized similarity matrix, backward, and the foreach LARS update, for the models of the C# step
suite (models.py): on the GPU ResNet-18 CIFAR stem at B = 512 (32x32) and ResNet-50 at B = 128 (224x224);
on the CPU (--device cpu, the C# cpu suite's steps) ResNet-18 CIFAR at width 0.25, B = 8, and full width,
B = 32.
The views are already on the GPU: in the usual PyTorch pipeline augmentation runs in DataLoader
workers beside the step (augment.py times it), so these figures compare with the C# suite's
step.<model>.b<B>.train rows (forward + backward + LARS, augment excluded).

  eager-fp32             eager mode, NCHW, plain fp32 (TF32 off unless --tf32);
  amp-bf16-channels_last autocast to bfloat16 with channels_last activations and weights;
  compile-fp32           torch.compile of forward + loss (default mode), fp32; compilation happens
                         in the warm-up runs, which are not timed. Needs torch 2.x: skipped, with the
                         reason in the notes, on torch 1.13.
On the CPU only eager-fp32 and compile-fp32 run (bf16 autocast is the GPU's fast path here).
"""
import argparse

import torch

import common
import lars
import models
import ntxent


def make_step(model, views, params, moms, flags, autocast, compiled, device):
    def forward_loss(x):
        z = model(x)
        return ntxent.nt_xent(z.float(), 0.5)

    loss_fn = torch.compile(forward_loss) if compiled else forward_loss

    def step():
        for p in params:
            p.grad = None
        if autocast:
            with torch.autocast(device, dtype=torch.bfloat16):
                loss = loss_fn(views)
        else:
            loss = loss_fn(views)
        loss.backward()
        lars.lars_foreach(params, [p.grad for p in params], moms, flags)

    return step


VARIANTS = (
    # impl, channels_last, autocast, compiled
    ("eager-fp32", False, False, False),
    ("amp-bf16-channels_last", True, True, False),
    ("compile-fp32", False, False, True),
)


def main():
    parser = common.base_parser(__doc__)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    args = parser.parse_args()
    common.check_args(args)
    notes = [f"fp32 TF32 {'on' if args.tf32 else 'off'}; views pre-made on the {args.device.upper()}"]
    if args.device == "cpu":
        table = models.CPU_SMOKE_MODELS if args.smoke else models.CPU_MODELS
    else:
        table = {"resnet18-cifar": models.MODELS["resnet18-cifar"][:3] + (8, 32)} if args.smoke else models.MODELS
    if not common.has_compile() and not args.no_compile:
        notes.append(f"compile-fp32 skipped: torch.compile needs torch 2.x, this is {torch.__version__}")
    results = []
    for name, (_, _, _, batch, side) in table.items():
        key = f"step.{name}.b{batch}.train"
        if not common.selected(args, key):
            continue
        for impl, channels_last, autocast, compiled in VARIANTS:
            if compiled and (args.no_compile or not common.has_compile()):
                continue
            if autocast and args.device == "cpu":
                continue
            torch.manual_seed(0)
            model = models.build(name, table).to(args.device)
            views = torch.randn(2 * batch, 3, side, side, device=args.device)
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
                views = views.contiguous(memory_format=torch.channels_last)
            params, flags = models.lars_groups(model)
            moms = [torch.zeros_like(p) for p in params]
            step = make_step(model, views, params, moms, flags, autocast, compiled, args.device)
            warm = argparse.Namespace(**{**vars(args), "warmup": max(args.warmup, 3)})
            t = common.time_device(warm, step)
            results.append(common.result(key, impl, t, 2 * batch, "views", common.peak_memory(args, step)))
            del model, views, params, moms, step
            if args.device == "cuda":
                torch.cuda.empty_cache()
    common.emit("step.py", args, results, notes)


if __name__ == "__main__":
    main()
