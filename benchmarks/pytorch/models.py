"""The SimCLR models of the C# step suites, built by python/simclr_native.py from torchvision's blocks so
parameter sets match tensor for tensor (src/Layers/SimClrModel.cs): a ResNet encoder with fc = Identity (the CIFAR stem: 3x3/1 conv, no max-pool;
the ImageNet stem: 7x7/2 conv, max-pool) whose every stage is scaled by a width multiplier (base width 64*w,
as src/Layers/ResNet.cs; w = 1 is torchvision's ResNet exactly), and a 2-layer head named "head":
Linear(F, F, no bias), BatchNorm1d, ReLU, Linear(F, 128, bias). BN parameters and biases are excluded from
weight decay and from LARS adaptation, as in SimCLR.
"""
import os
import sys

from torch import nn

# python/simclr_native.py builds the encoder: two levels up in the repository and in the GPU bundle alike
# (scripts/gpu-bundle.sh ships python/ beside benchmarks/).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import simclr_native  # noqa: E402

HEAD_OUT = 128


class SimClr(nn.Module):
    def __init__(self, arch, cifar_stem, width=1.0):
        super().__init__()
        self.encoder = simclr_native.resnet(arch, width, "cifar" if cifar_stem else "imagenet")
        # The pooled feature width: stage 3's planes (64*w * 8) times the block's expansion.
        features = round(64 * width) * 8 * type(self.encoder.layer4[-1]).expansion
        self.head = simclr_native.projection_head(features, features, HEAD_OUT)

    def forward(self, views):
        return self.head(self.encoder(views))


# name: (arch, CIFAR stem, width, batch of positive pairs, image side); the names are the C# suites' keys.
MODELS = {
    "resnet18-cifar": ("resnet18", True, 1.0, 512, 32),
    "resnet50": ("resnet50", False, 1.0, 128, 224),
}
# The C# CPU suite's steps (StepBenchmarks.RunCpu): small enough for a CPU.
CPU_MODELS = {
    "resnet18-cifar-w0.25": ("resnet18", True, 0.25, 8, 32),
    "resnet18-cifar": ("resnet18", True, 1.0, 32, 32),
}
CPU_SMOKE_MODELS = {"resnet18-cifar-w0.125": ("resnet18", True, 0.125, 2, 16)}


def build(name, table=None):
    arch, cifar_stem, width, _, _ = (table or MODELS)[name]
    return SimClr(arch, cifar_stem, width)


def lars_groups(model):
    """The trainable tensors and SimCLR's exclusion flags: BN weights/biases and every bias, which are the
    1-d tensors in these models."""
    params = [p for p in model.parameters() if p.requires_grad]
    return params, [p.ndim == 1 for p in params]
