"""SimClr.Native's files in Python: safetensors with numpy alone, encoders into PyTorch/torchvision.

    read_safetensors(path)            -> (dict name -> numpy array, metadata dict); numpy only
    write_safetensors(path, tensors)  numpy only
    save_state_dict(state_dict, path) a torchvision state_dict as safetensors, for --init-from
                                      (Debian's torch 1.13 has no safetensors package)
    resnet(arch, width, stem)         the encoder at any width, torchvision's blocks and names, fc = Identity
    projection_head(...)              the projection head g as an nn.Sequential with the export's names
    load_encoder(path, with_head)     rebuild and strictly load an `export` file; eval mode
    preprocess(images, metadata)      uint8 NHWC -> the normalized float32 NCHW tensor the encoder expects

What --width means: SimClr.Native scales every stage of the ResNet (src/Layers/ResNet.cs): the stem has
64*w channels and stage s (0..3) has (64*w)*2**s planes, times 4 at the output of a ResNet-50 bottleneck.
torchvision's `width_per_group` scales only the inner 3x3 width of bottlenecks and keeps the stem and
every block's output at 64*2**s, so stock torchvision can express w = 1 only. resnet() therefore stacks
torchvision's own BasicBlock/Bottleneck exactly as torchvision.models.ResNet does (same attribute names,
same forward), with the scaled plane counts. At w = 1 it has exactly torchvision.models.resnet18/34/50's
tensors, fc aside. The CIFAR stem is a 3x3 stride-1 conv1 (padding 1)
and no max-pool; the ImageNet stem is torchvision's 7x7 stride-2 conv1 and 3x3 stride-2 max-pool.

Only numpy is imported at module level, so the readers work where torch is not installed.
"""
import json
import struct

import numpy as np

_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "U8": np.uint8}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


def read_safetensors(path):
    """All tensors of a safetensors file as read-only numpy arrays, and its __metadata__ strings."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = np.dtype(_DTYPES[entry["dtype"]]).newbyteorder("<")
        tensors[name] = np.frombuffer(data, dtype=dtype, count=(end - begin) // dtype.itemsize, offset=begin).reshape(entry["shape"])
    return tensors, metadata


def write_safetensors(path, tensors, metadata=None):
    """Writes numpy arrays (F32, F64, I32, I64 or U8) and string metadata as one safetensors file."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, array in tensors.items():
        array = np.asarray(array)  # (not ascontiguousarray, which turns a 0-d scalar into shape [1])
        raw = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        header[name] = {"dtype": _NAMES[array.dtype.newbyteorder("=")], "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data that follows stays 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)


def save_state_dict(state_dict, path, metadata=None):
    """A torch state_dict as safetensors: floating tensors as float32, integer ones (num_batches_tracked) as int64."""
    arrays = {}
    for name, tensor in state_dict.items():
        array = tensor.detach().cpu().numpy()
        arrays[name] = array.astype(np.float32 if array.dtype.kind == "f" else np.int64)
    write_safetensors(path, arrays, metadata)


_ARCHS = {"resnet18": ("BasicBlock", [2, 2, 2, 2]), "resnet34": ("BasicBlock", [3, 4, 6, 3]), "resnet50": ("Bottleneck", [3, 4, 6, 3])}


def resnet(arch="resnet18", width=1.0, stem="cifar"):
    """The SimClr.Native encoder `arch` at width multiplier `width` with the `stem` ("cifar" or "imagenet"):
    torchvision's BasicBlock/Bottleneck stacked as torchvision.models.ResNet stacks them, with every stage
    scaled (see the module docstring) and fc = Identity, so forward() returns the pooled feature h. The
    parameters keep PyTorch's default initialization: the model is meant to receive exported weights."""
    import torch.nn as nn
    from torchvision.models import resnet as tv

    block_name, layers = _ARCHS[arch]
    block = getattr(tv, block_name)
    base = round(64 * width)
    if base < 1 or abs(64 * width - base) > 1e-9:
        raise ValueError(f"width {width} must make 64*width a positive whole number of channels")
    if stem not in ("cifar", "imagenet"):
        raise ValueError(f"stem {stem!r} is neither 'cifar' nor 'imagenet'")

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            if stem == "cifar":
                self.conv1 = nn.Conv2d(3, base, kernel_size=3, stride=1, padding=1, bias=False)
                self.maxpool = nn.Identity()
            else:
                self.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
                self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.bn1 = nn.BatchNorm2d(base)
            self.relu = nn.ReLU(inplace=True)
            inplanes = base
            for stage, count in enumerate(layers):
                planes, blocks = base << stage, []
                for i in range(count):
                    stride = 2 if stage > 0 and i == 0 else 1
                    downsample = None
                    if stride != 1 or inplanes != planes * block.expansion:
                        downsample = nn.Sequential(nn.Conv2d(inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                                                   nn.BatchNorm2d(planes * block.expansion))
                    blocks.append(block(inplanes, planes, stride, downsample))
                    inplanes = planes * block.expansion
                setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Identity()

        def forward(self, x):  # torchvision's ResNet._forward_impl
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return ResNet()


def projection_head(in_features, hidden, out, layers=2):
    """g(h) as exported under "head.": (Linear without bias, BatchNorm1d, ReLU) x (layers - 1), then Linear with bias."""
    import torch.nn as nn

    modules, width = [], in_features
    for _ in range(layers - 1):
        modules += [nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
        width = hidden
    modules.append(nn.Linear(width, out))
    return nn.Sequential(*modules)


def load_encoder(path, with_head=False):
    """(encoder, head or None, metadata) from an `export` file, every tensor loaded strictly, in eval mode."""
    import torch

    tensors, meta = read_safetensors(path)
    encoder = resnet(meta["arch"], float(meta["width"]), meta["stem"])
    encoder.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items() if not k.startswith("head.")})
    encoder.eval()
    head = None
    if with_head:
        if meta.get("head") != "included":
            raise ValueError(f"{path} has no projection head: export it with --with-head")
        head = projection_head(int(meta["feature_dim"]), int(meta["head_hidden"]), int(meta["head_out"]), int(meta["head_layers"]))
        head.load_state_dict({k[len("head."):]: torch.from_numpy(v.copy()) for k, v in tensors.items() if k.startswith("head.")})
        head.eval()
    return encoder, head, meta


def preprocess(images, metadata):
    """uint8 images [N, H, W, 3] -> float32 [N, 3, H, W], scaled to [0, 1] and normalized with the
    metadata's mean and std, as embed and evaluation feed the encoder."""
    import torch

    mean = np.asarray(json.loads(metadata["mean"]), dtype=np.float32)
    std = np.asarray(json.loads(metadata["std"]), dtype=np.float32)
    x = (np.asarray(images, dtype=np.float32) / np.float32(255) - mean) / std
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
