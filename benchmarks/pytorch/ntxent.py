"""NT-Xent and cosine-similarity baselines: the loss as common SimCLR code writes it, materializing the
2N x 2N similarity matrix, masking the diagonal and taking cross-entropy against the positive pair
(row i's positive is row (i + N) mod 2N, temperature 0.5, as in the C# suite). Forward + backward is
timed with peak memory, then the forward alone, then the cosine-similarity matrix. Sizes follow the C#
suite of the device: `kernels` on the GPU, `cpu` on the CPU.
"""
import torch
import torch.nn.functional as F

import common

# (2N, d) per device and size set, as benchmarks/GpuSuites.cs and benchmarks/CpuSuite.cs.
SIZES = {
    ("cuda", False): [(1024, 128), (4096, 128), (8192, 128), (16384, 128)],
    ("cuda", True): [(256, 128)],
    ("cpu", False): [(1024, 128), (2048, 128)],
    ("cpu", True): [(64, 32)],
}
TEMPERATURE = 0.5


def nt_xent(z, temperature):
    rows = z.shape[0]
    half = rows // 2
    zn = F.normalize(z, dim=1)
    logits = zn @ zn.t() / temperature
    self_mask = torch.eye(rows, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    targets = (torch.arange(rows, device=z.device) + half) % rows
    return F.cross_entropy(logits, targets)


def main():
    parser = common.base_parser(__doc__)
    args = parser.parse_args()
    common.check_args(args)
    results = []
    device = args.device
    for rows, dim in SIZES[(device, args.smoke)]:
        z = torch.randn(rows, dim, device=device, requires_grad=True)

        def fwd_bwd():
            z.grad = None
            nt_xent(z, TEMPERATURE).backward()

        def fwd():
            with torch.no_grad():
                nt_xent(z, TEMPERATURE)

        key = f"ntxent.fwdbwd.rows{rows}.d{dim}"
        if common.selected(args, key):
            t = common.time_device(args, fwd_bwd)
            results.append(common.result(key, "materialized", t, rows, "rows", common.peak_memory(args, fwd_bwd)))
        key = f"ntxent.fwd.rows{rows}.d{dim}"
        if common.selected(args, key):
            t = common.time_device(args, fwd)
            results.append(common.result(key, "materialized", t, rows, "rows", common.peak_memory(args, fwd)))
        key = f"cosine.m{rows}.n{rows}.d{dim}"
        if common.selected(args, key):
            a = torch.randn(rows, dim, device=device)
            b = torch.randn(rows, dim, device=device)

            def cosine():
                return F.normalize(a, dim=1) @ F.normalize(b, dim=1).t()

            t = common.time_device(args, cosine)
            results.append(common.result(key, "normalize+matmul", t, rows, "rows", common.peak_memory(args, cosine)))
        del z
        if device == "cuda":
            torch.cuda.empty_cache()
    common.emit("ntxent.py", args, results, [f"fp32, TF32 {'on' if args.tf32 else 'off'}"])


if __name__ == "__main__":
    main()
