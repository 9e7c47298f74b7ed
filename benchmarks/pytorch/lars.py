"""LARS baselines over the parameter sets of the C# suite's models (lars.resnet18 = ResNet-18 CIFAR
stem + head, lars.resnet50 = ResNet-50 + head; see models.py), with SimCLR's TF semantics as in
src/Kernels/OpShapes.cs LarsHyper: g' = g + wd*w (unless excluded); trust = eta*|w|/|g'| when both
norms are positive, else 1 (and 1 for excluded tensors); v = m*v + lr*trust*g'; w -= v.

  loop     the per-parameter Python loop most SimCLR repositories use;
  foreach  the same update with torch._foreach_* multi-tensor ops (one host sync to read the trust
           ratios back as a scalar list, which the _foreach_ fast paths take).
"""
import torch

import common
import models

LR, MOMENTUM, WEIGHT_DECAY, ETA = 0.3, 0.9, 1e-6, 1e-3


def lars_loop(params, grads, moms, flags):
    with torch.no_grad():
        for p, g, v, skip in zip(params, grads, moms, flags):
            if skip:
                v.mul_(MOMENTUM).add_(g, alpha=LR)
            else:
                g = g.add(p, alpha=WEIGHT_DECAY)
                w_norm = torch.linalg.vector_norm(p)
                g_norm = torch.linalg.vector_norm(g)
                trust = torch.where((w_norm > 0) & (g_norm > 0), ETA * w_norm / g_norm, torch.ones_like(w_norm))
                v.mul_(MOMENTUM).add_(g * (LR * trust))
            p.sub_(v)


def lars_foreach(params, grads, moms, flags):
    with torch.no_grad():
        adapt = [i for i, skip in enumerate(flags) if not skip]
        p_adapt = [params[i] for i in adapt]
        g_all = list(grads)
        g_adapt = torch._foreach_add([grads[i] for i in adapt], p_adapt, alpha=WEIGHT_DECAY)
        for j, i in enumerate(adapt):
            g_all[i] = g_adapt[j]
        w_norms = torch.stack(torch._foreach_norm(p_adapt))
        g_norms = torch.stack(torch._foreach_norm(g_adapt))
        trust = torch.where((w_norms > 0) & (g_norms > 0), ETA * w_norms / g_norms, torch.ones_like(w_norms))
        scales = [LR] * len(params)
        for j, t in zip(adapt, (LR * trust).tolist()):
            scales[j] = t
        torch._foreach_mul_(moms, MOMENTUM)
        torch._foreach_add_(moms, torch._foreach_mul(g_all, scales))
        torch._foreach_sub_(params, moms)


def main():
    parser = common.base_parser(__doc__)
    args = parser.parse_args()
    common.check_args(args)
    results = []
    # (model, table, key) as the C# suites name them: full-width ResNet-18/50, and the CPU smoke's ResNet-18 at w = 1/8.
    if args.smoke and args.device == "cpu":
        workloads = [("resnet18-cifar-w0.125", models.CPU_SMOKE_MODELS, "lars.resnet18-w0.125")]
    elif args.smoke:
        workloads = [("resnet18-cifar", models.MODELS, "lars.resnet18")]
    else:
        workloads = [("resnet18-cifar", models.MODELS, "lars.resnet18"), ("resnet50", models.MODELS, "lars.resnet50")]
    for name, table, key in workloads:
        if not common.selected(args, key):
            continue
        model = models.build(name, table).to(args.device)
        params, flags = models.lars_groups(model)
        grads = [torch.randn_like(p) * 0.01 for p in params]
        moms = [torch.zeros_like(p) for p in params]
        count = sum(p.numel() for p in params)
        for impl, fn in (("loop", lars_loop), ("foreach", lars_foreach)):
            def step():
                fn(params, grads, moms, flags)

            t = common.time_device(args, step)
            results.append(common.result(key, impl, t, count, "params", common.peak_memory(args, step)))
        del model, params, grads, moms
        if args.device == "cuda":
            torch.cuda.empty_cache()
    common.emit("lars.py", args, results)


if __name__ == "__main__":
    main()
