"""Augmentation baselines for SimCLR's view pipeline (random resized crop, flip, colour jitter,
grayscale, blur for ImageNet-size views, normalize), on the same workloads as the C# suites: views of
32x32 from 32x32 sources (CIFAR, colour strength 0.5, no blur) and views of 224x224 from 256x256 sources
(ImageNet settings, strength 1, blur p = 0.5), 512 and 256 per call on the GPU, 512 and 32 on the CPU
(benchmarks/CpuSuite.cs). Sources are random uint8 images.

Ways people run it:
  tv2-gpu-per-image   torchvision.transforms.v2 on the GPU, called per image of a resident batch, so
                      every image draws its own parameters (what SimCLR needs);
  tv2-gpu-batch       one v2 call on the whole batch tensor: one draw shared by the batch, cheaper but
                      not SimCLR's semantics (a lower bound on the GPU cost);
  tv-cpu-per-image    (--device cpu) the same per-image calls on CPU tensors in this process, the
                      counterpart of the C# CPU twin;
  dataloader-cpu      the usual CPU pipeline: a Dataset applying the transforms per image on PIL images,
                      a DataLoader with worker processes (and pinned memory on a GPU host); timed per batch
                      with perf_counter in steady state (the workers prefetch), one view per image.
torchvision 0.15+ provides transforms.v2; on older ones (Debian's 0.14) the classic transforms run the
same steps, and the notes say so.
"""
import os

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

try:
    from torchvision.transforms import v2 as T

    V2 = True
except ImportError:
    import torchvision.transforms as T

    V2 = False

import common

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def simclr_transform(size, strength, blur, mean, std, pil_input):
    steps = [
        T.RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
        T.RandomHorizontalFlip(p=0.5),
        T.RandomApply([T.ColorJitter(0.8 * strength, 0.8 * strength, 0.8 * strength, 0.2 * strength)], p=0.8),
        T.RandomGrayscale(p=0.2),
    ]
    if blur:
        kernel = 2 * (size // 20) + 1  # about 10% of the side, odd, as in SimCLR
        steps.append(T.RandomApply([T.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5))
    if V2:
        steps += [T.ToImage(), T.ToDtype(torch.float32, scale=True)]
    else:
        steps.append(T.ToTensor() if pil_input else T.ConvertImageDtype(torch.float32))
    steps.append(T.Normalize(mean, std))
    return T.Compose(steps)


WORKLOADS = {
    # label: (views per call, source side, output side, colour strength, blur, mean, std)
    "cifar": (512, 32, 32, 0.5, False, CIFAR_MEAN, CIFAR_STD),
    "imagenet": (256, 256, 224, 1.0, True, IMAGENET_MEAN, IMAGENET_STD),
}
CPU_WORKLOADS = {**WORKLOADS, "imagenet": (32, 256, 224, 1.0, True, IMAGENET_MEAN, IMAGENET_STD)}
SMOKE = {"cifar": (16, 32, 32, 0.5, False, CIFAR_MEAN, CIFAR_STD)}


class ResidentImages(Dataset):
    """Random HWC uint8 images, one SimCLR view per item, as a CPU DataLoader pipeline sees them."""

    def __init__(self, images, transform, length):
        self.images = images
        self.transform = transform
        self.length = length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return self.transform(Image.fromarray(self.images[index % len(self.images)]))


def main():
    parser = common.base_parser(__doc__)
    parser.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1), help="DataLoader worker processes")
    args = parser.parse_args()
    common.check_args(args)
    on_cpu = args.device == "cpu"
    notes = [f"DataLoader workers: {args.workers}", "torchvision transforms.v2" if V2 else "torchvision classic transforms (no transforms.v2 before 0.15)"]
    results = []
    for label, (batch, source, out, strength, blur, mean, std) in (SMOKE if args.smoke else CPU_WORKLOADS if on_cpu else WORKLOADS).items():
        key = f"augment.{label}.b{batch}.{out}x{out}"
        if not common.selected(args, key):
            continue
        transform = simclr_transform(out, strength, blur, mean, std, pil_input=False)
        rng = np.random.default_rng(14)
        host = rng.integers(0, 256, size=(batch, source, source, 3), dtype=np.uint8)
        resident = torch.from_numpy(host).to(args.device).permute(0, 3, 1, 2).contiguous()

        def per_image():
            return torch.stack([transform(resident[i]) for i in range(batch)])

        t = common.time_device(args, per_image)
        results.append(common.result(key, "tv-cpu-per-image" if on_cpu else "tv2-gpu-per-image", t, batch, "images", common.peak_memory(args, per_image)))

        if not on_cpu:
            def whole_batch():
                return transform(resident)

            t = common.time_cuda(whole_batch, args.samples, args.warmup)
            results.append(common.result(key, "tv2-gpu-batch", t, batch, "images", common.peak_memory(args, whole_batch),
                                         "one random draw per batch: not SimCLR semantics"))

        batches_needed = args.warmup + args.samples + 2
        dataset = ResidentImages(host, simclr_transform(out, strength, blur, mean, std, pil_input=True), batch * batches_needed)
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=args.workers, pin_memory=not on_cpu,
                            drop_last=True, persistent_workers=args.workers > 0)
        batches = iter(loader)

        def next_batch():
            if on_cpu:
                next(batches)
            else:
                next(batches).cuda(non_blocking=True)
                torch.cuda.synchronize()

        t = common.time_host(next_batch, args.samples, args.warmup)
        results.append(common.result(key, "dataloader-cpu", t, batch, "images",
                                     note=f"{args.workers} workers, PIL per image{'' if on_cpu else ', pinned'}, host-timed"))
        del batches, loader
    common.emit("augment.py", args, results, notes)


if __name__ == "__main__":
    main()
