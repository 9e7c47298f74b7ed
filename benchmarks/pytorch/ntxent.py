"""NT-Xent and cosine-similarity baselines: the loss as common SimCLR code writes it, materializing the
2N x 2N similarity matrix, masking the diagonal and taking cross-entropy against the positive pair
(row i's positive is row (i + N) mod 2N, temperature 0.5, as in the C# suite). Forward + backward is
timed with peak memory, then the forward alone, then the cosine-similarity matrix.
"""
import torch
import torch.nn.functional as F

import common

SIZES = [1024, 4096, 8192, 16384]
SMOKE_SIZES = [256]
DIM = 128
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
    for rows in SMOKE_SIZES if args.smoke else SIZES:
        z = torch.randn(rows, DIM, device="cuda", requires_grad=True)

        def fwd_bwd():
            z.grad = None
            nt_xent(z, TEMPERATURE).backward()

        def fwd():
            with torch.no_grad():
                nt_xent(z, TEMPERATURE)

        key = f"ntxent.fwdbwd.rows{rows}.d{DIM}"
        if common.selected(args, key):
            t = common.time_cuda(fwd_bwd, args.samples, args.warmup)
            results.append(common.result(key, "materialized", t, rows, "rows", common.peak_memory(fwd_bwd)))
        key = f"ntxent.fwd.rows{rows}.d{DIM}"
        if common.selected(args, key):
            t = common.time_cuda(fwd, args.samples, args.warmup)
            results.append(common.result(key, "materialized", t, rows, "rows", common.peak_memory(fwd)))
        key = f"cosine.m{rows}.n{rows}.d{DIM}"
        if common.selected(args, key):
            a = torch.randn(rows, DIM, device="cuda")
            b = torch.randn(rows, DIM, device="cuda")

            def cosine():
                return F.normalize(a, dim=1) @ F.normalize(b, dim=1).t()

            t = common.time_cuda(cosine, args.samples, args.warmup)
            results.append(common.result(key, "normalize+matmul", t, rows, "rows", common.peak_memory(cosine)))
        del z
        torch.cuda.empty_cache()
    common.emit("ntxent.py", args, results, [f"fp32, TF32 {'on' if args.tf32 else 'off'}"])


if __name__ == "__main__":
    main()
