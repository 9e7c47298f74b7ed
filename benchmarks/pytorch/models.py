"""The SimCLR models of the C# step suite, built from torchvision so parameter sets match tensor for
tensor (src/Layers/SimClrModel.cs): a ResNet encoder without fc (ResNet-18 with the CIFAR stem:
3x3/1 conv, no max-pool; ResNet-50 with the ImageNet stem) and a 2-layer head named "head":
Linear(F, F, no bias), BatchNorm1d, ReLU, Linear(F, 128, bias). BN parameters and biases are
excluded from weight decay and from LARS adaptation, as in SimCLR.
"""
import torch
from torch import nn
import torchvision

HEAD_OUT = 128


class SimClr(nn.Module):
    def __init__(self, arch, cifar_stem):
        super().__init__()
        encoder = getattr(torchvision.models, arch)(weights=None)
        if cifar_stem:
            encoder.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            encoder.maxpool = nn.Identity()
        features = encoder.fc.in_features
        encoder.fc = nn.Identity()
        self.encoder = encoder
        self.head = nn.Sequential(
            nn.Linear(features, features, bias=False),
            nn.BatchNorm1d(features),
            nn.ReLU(inplace=True),
            nn.Linear(features, HEAD_OUT, bias=True),
        )

    def forward(self, views):
        return self.head(self.encoder(views))


# name: (torchvision arch, CIFAR stem, batch of positive pairs, image side)
MODELS = {
    "resnet18-cifar": ("resnet18", True, 512, 32),
    "resnet50": ("resnet50", False, 128, 224),
}


def build(name):
    arch, cifar_stem, _, _ = MODELS[name]
    return SimClr(arch, cifar_stem)


def excluded(name, param):
    """SimCLR's exclusions: BN weights/biases and every bias (1-d tensors in these models)."""
    return param.ndim == 1


def lars_groups(model):
    params = [p for p in model.parameters() if p.requires_grad]
    flags = [excluded(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return params, flags
