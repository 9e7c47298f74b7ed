"""Golden features: torchvision fed SimClr.Native's `export`, on the image files SimClr.Native's `embed` read.

job.json: {"output": path, "cases": [{"name", "export", "embedding", "stock"}]}. For each case the encoder is
stock torchvision (width 1: torchvision.models.resnetNN with the CIFAR stem replaced as the README says) or
simclr_native.resnet (other widths); every tensor loads strictly. The images are the embedding's own files
(metadata "root" + "files", in row order), decoded by PIL and normalized with the export's mean and std.
Writes "<name>.features" (h) and "<name>.projections" (g(h), head in eval mode) for the test to compare.
"""
import json
import os
import sys

import numpy as np
import torch
import torchvision
from PIL import Image

import simclr_native as sn


def stock_encoder(arch, stem):
    model = getattr(torchvision.models, arch)()
    if stem == "cifar":
        model.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = torch.nn.Identity()
    model.fc = torch.nn.Identity()
    return model


def main(job_path):
    with open(job_path) as f:
        job = json.load(f)
    out = {}
    for case in job["cases"]:
        tensors, meta = sn.read_safetensors(case["export"])
        if case["stock"]:
            assert float(meta["width"]) == 1.0, case
            encoder = stock_encoder(meta["arch"], meta["stem"])
        else:
            encoder = sn.resnet(meta["arch"], float(meta["width"]), meta["stem"])
        encoder.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items() if not k.startswith("head.")})
        head = sn.projection_head(int(meta["feature_dim"]), int(meta["head_hidden"]), int(meta["head_out"]), int(meta["head_layers"]))
        head.load_state_dict({k[len("head."):]: torch.from_numpy(v.copy()) for k, v in tensors.items() if k.startswith("head.")})
        encoder.eval()
        head.eval()
        _, emeta = sn.read_safetensors(case["embedding"])
        files = json.loads(emeta["files"])
        images = np.stack([np.asarray(Image.open(os.path.join(emeta["root"], f)).convert("RGB")) for f in files])
        with torch.no_grad():
            h = encoder(sn.preprocess(images, meta))
            z = head(h)
        out[case["name"] + ".features"] = h.numpy()
        out[case["name"] + ".projections"] = z.numpy()
    sn.write_safetensors(job["output"], out)


if __name__ == "__main__":
    main(sys.argv[1])
