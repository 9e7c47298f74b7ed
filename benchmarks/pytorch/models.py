"""The SimCLR models of the C# step suites, built from torchvision's blocks so parameter sets match tensor
for tensor (src/Layers/SimClrModel.cs): a ResNet encoder without fc (the CIFAR stem: 3x3/1 conv, no max-pool;
the ImageNet stem: 7x7/2 conv, max-pool) whose every stage is scaled by a width multiplier (base width 64*w,
as src/Layers/ResNet.cs; w = 1 is torchvision's ResNet exactly), and a 2-layer head named "head":
Linear(F, F, no bias), BatchNorm1d, ReLU, Linear(F, 128, bias). BN parameters and biases are excluded from
weight decay and from LARS adaptation, as in SimCLR.
"""
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

HEAD_OUT = 128
LAYERS = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet50": (Bottleneck, [3, 4, 6, 3])}


class Encoder(nn.Module):
    """torchvision's ResNet layout with base width 64*width and no fc."""

    def __init__(self, arch, cifar_stem, width):
        super().__init__()
        block, counts = LAYERS[arch]
        base = round(64 * width)
        if base < 1 or abs(64 * width - base) > 1e-9:
            raise ValueError(f"width {width} must make 64*w a positive whole number")
        if cifar_stem:
            self.conv1 = nn.Conv2d(3, base, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.inplanes = base
        stages = []
        for i, count in enumerate(counts):
            stages.append(self._stage(block, base << i, count, stride=1 if i == 0 else 2))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.features = self.inplanes

    def _stage(self, block, planes, count, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, count)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


class SimClr(nn.Module):
    def __init__(self, arch, cifar_stem, width=1.0):
        super().__init__()
        self.encoder = Encoder(arch, cifar_stem, width)
        features = self.encoder.features
        self.head = nn.Sequential(
            nn.Linear(features, features, bias=False),
            nn.BatchNorm1d(features),
            nn.ReLU(inplace=True),
            nn.Linear(features, HEAD_OUT, bias=True),
        )

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


def excluded(name, param):
    """SimCLR's exclusions: BN weights/biases and every bias (1-d tensors in these models)."""
    return param.ndim == 1


def lars_groups(model):
    params = [p for p in model.parameters() if p.requires_grad]
    flags = [excluded(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return params, flags
