"""Single-op baselines with the keys of the C# suites' op rows, so a step's time can be split op by op on
both sides: GEMM (torch.matmul into a preallocated output), the three passes of a convolution (forward,
and aten.convolution_backward for the data and the filter gradient alone: oneDNN on the CPU, cuDNN on the
GPU, as PyTorch's own training calls them), and element-wise ops (copy, axpy, ReLU forward and backward,
out-of-place into preallocated tensors). Shapes follow benchmarks/CpuSuite.cs on the CPU; on the GPU only
the element-wise rows of the kernels suite exist (GEMM and convolutions are cuBLAS/cuDNN on both sides).
"""
import torch

import common

# (label, M, N, K, transpose B) as OpCases.Gemm rows of the cpu suite.
GEMMS = {
    False: [("sq256", 256, 256, 256, False), ("sq512", 512, 512, 512, False), ("sq512.nt", 512, 512, 512, True),
            ("im2col.layer1", 64, 8 * 32 * 32, 64 * 9, False), ("im2col.layer4", 512, 8 * 4 * 4, 512 * 9, False),
            ("linear.head", 512, 512, 512, True)],
    True: [("sq64", 64, 64, 64, False), ("im2col.tiny", 16, 256, 144, False)],
}
# (label, N, C, H, W, K, kernel, stride, pad) as the cpu suite's convolution layers.
CONVS = {
    False: [("r18c.stem", 8, 3, 32, 32, 64, 3, 1, 1), ("r18c.layer1", 8, 64, 32, 32, 64, 3, 1, 1),
            ("r18c.layer2.down3x3", 8, 64, 32, 32, 128, 3, 2, 1), ("r18c.layer3.down1x1", 8, 128, 16, 16, 256, 1, 2, 0),
            ("r18c.layer4", 8, 512, 4, 4, 512, 3, 1, 1), ("imagenet.stem7x7", 2, 3, 224, 224, 64, 7, 2, 3)],
    True: [("tiny3x3", 2, 8, 8, 8, 8, 3, 1, 1)],
}
# (ops, elements) per (device, smoke), as the suites' ElementwiseOp rows.
ELEMENTWISE = {
    ("cpu", False): (("copy", "axpy", "reluforward", "relubackward"), 1 << 24),
    ("cpu", True): (("axpy", "reluforward"), 1 << 16),
    ("cuda", False): (("fill", "copy", "scale", "axpy", "add", "reluforward", "relubackward"), 1 << 26),
    ("cuda", True): (("fill", "copy", "scale", "axpy", "add", "reluforward", "relubackward"), 1 << 20),
}


def uniform(*shape, device):
    return torch.rand(*shape, device=device) * 2 - 1


def main():
    parser = common.base_parser(__doc__)
    args = parser.parse_args()
    common.check_args(args)
    device, results = args.device, []
    if device == "cpu":
        for label, m, n, k, trans_b in GEMMS[args.smoke]:
            key = f"gemm.{label}"
            if not common.selected(args, key):
                continue
            a = uniform(m, k, device=device)
            b = uniform(n, k, device=device).t() if trans_b else uniform(k, n, device=device)
            c = torch.empty(m, n, device=device)
            t = common.time_device(args, lambda: torch.matmul(a, b, out=c))
            results.append(common.result(key, "matmul", t))
        for label, batch, cin, h, w, cout, kernel, stride, pad in CONVS[args.smoke]:
            x = uniform(batch, cin, h, w, device=device)
            weight = uniform(cout, cin, kernel, kernel, device=device)
            y = torch.nn.functional.conv2d(x, weight, stride=stride, padding=pad)
            dy = uniform(*y.shape, device=device)

            def backward(mask):
                return torch.ops.aten.convolution_backward(dy, x, weight, None, [stride, stride], [pad, pad], [1, 1], False, [0, 0], 1, mask)

            passes = {
                "fwd": lambda: torch.nn.functional.conv2d(x, weight, stride=stride, padding=pad),
                "bwd_data": lambda: backward([True, False, False]),
                "bwd_filter": lambda: backward([False, True, False]),
            }
            for name, fn in passes.items():
                key = f"conv.{label}.{name}"
                if common.selected(args, key):
                    results.append(common.result(key, "oneDNN" if torch.backends.mkldnn.is_available() else "aten", common.time_device(args, fn)))
    names, n = ELEMENTWISE[(device, args.smoke)]
    x, y, z = (uniform(n, device=device) for _ in range(3))
    ops = {
        "fill": lambda: x.fill_(0.5),
        "copy": lambda: y.copy_(x),
        "scale": lambda: x.mul_(1.0),
        "axpy": lambda: y.add_(x, alpha=1e-3),
        "add": lambda: torch.add(x, y, out=z),
        "reluforward": lambda: torch.clamp_min(x, 0, out=y),
        "relubackward": lambda: torch.ops.aten.threshold_backward.grad_input(x, y, 0.0, grad_input=z),
    }
    for name in names:
        key = f"elementwise.{name}.n{n}"
        if common.selected(args, key):
            results.append(common.result(key, "torch", common.time_device(args, ops[name]), n, "elems"))
    common.emit("ops.py", args, results)


if __name__ == "__main__":
    main()
