"""Golden ops: NT-Xent and the linear-probe pieces of SimClr.Native against PyTorch in float64 on the same values.

job.json: {"input": path, "output": path}. The input holds, per NT-Xent case "ntxent.<k>": z and metadata
temperature; for the linear ops: x, w, b, labels, momentum.w, momentum.b and the SGD settings; for the
linear probe: the raw train features, labels, one permutation per epoch and the probe settings. Writes:
  ntxent.<k>.loss, ntxent.<k>.dz        SimCLR's loss (positives i <-> i+N, self-similarity excluded) and its gradient
  linear.logits, linear.loss, linear.dlogits, linear.dw, linear.db, linear.dx
  linear.sgd.w, linear.sgd.b, linear.sgd.momentum.w, linear.sgd.momentum.b   one torch.optim.SGD(nesterov) step
  probe.x, probe.w, probe.b             the standardized features and the probe trained with torch.optim.SGD
"""
import json
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

import simclr_native as sn
from golden_step import nt_xent  # the one reference of SimCLR's loss (this folder is sys.path[0])

torch.set_default_dtype(torch.float64)


def t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64).copy())


def main(job_path):
    with open(job_path) as f:
        job = json.load(f)
    data, meta = sn.read_safetensors(job["input"])
    out = {}

    for key in sorted({k.rsplit(".", 1)[0] for k in data if k.startswith("ntxent.")}):
        z = t(data[key + ".z"]).requires_grad_()
        loss = nt_xent(z, float(meta[key + ".temperature"]))
        loss.backward()
        out[key + ".loss"] = np.array([loss.item()])
        out[key + ".dz"] = z.grad.numpy()

    x, w, b = (t(data["linear." + k]).requires_grad_() for k in ("x", "w", "b"))
    labels = torch.from_numpy(data["linear.labels"].astype(np.int64))
    logits = F.linear(x, w, b)
    logits.retain_grad()
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    out.update({"linear.logits": logits.detach().numpy(), "linear.loss": np.array([loss.item()]), "linear.dlogits": logits.grad.numpy(),
                "linear.dw": w.grad.numpy(), "linear.db": b.grad.numpy(), "linear.dx": x.grad.numpy()})
    lr, momentum, wd = (float(meta["linear.sgd." + k]) for k in ("lr", "momentum", "weight_decay"))
    # Weight decay on the weight only, as the probe and SimCLR treat biases.
    opt = torch.optim.SGD([{"params": [w], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0}], lr=lr, momentum=momentum, nesterov=True)
    opt.state[w]["momentum_buffer"] = t(data["linear.momentum.w"])
    opt.state[b]["momentum_buffer"] = t(data["linear.momentum.b"])
    opt.step()
    out.update({"linear.sgd.w": w.detach().numpy(), "linear.sgd.b": b.detach().numpy(),
                "linear.sgd.momentum.w": opt.state[w]["momentum_buffer"].numpy(), "linear.sgd.momentum.b": opt.state[b]["momentum_buffer"].numpy()})

    # The linear probe: standardize with the training split's mean and population std (a constant feature
    # becomes 0), then multinomial logistic regression, Nesterov SGD, cosine learning rate per step.
    raw = data["probe.features"].astype(np.float64)
    mean, var = raw.mean(axis=0), raw.var(axis=0)
    inv = np.where(var > 1e-12, 1 / np.sqrt(np.maximum(var, 1e-300)), 0.0)
    xs = t((raw - mean) * inv)
    y = torch.from_numpy(data["probe.labels"].astype(np.int64))
    classes, epochs, batch = (int(meta["probe." + k]) for k in ("classes", "epochs", "batch_size"))
    lr0, momentum, wd = (float(meta["probe." + k]) for k in ("lr", "momentum", "weight_decay"))
    pw = torch.zeros(classes, xs.shape[1], requires_grad=True)
    pb = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.SGD([{"params": [pw], "weight_decay": wd}, {"params": [pb], "weight_decay": 0.0}], lr=lr0, momentum=momentum, nesterov=True)
    n = xs.shape[0]
    steps_per_epoch = (n + batch - 1) // batch
    total, step = steps_per_epoch * epochs, 0
    for epoch in range(epochs):
        perm = torch.from_numpy(data[f"probe.perm.{epoch}"].astype(np.int64))
        for start in range(0, n, batch):
            idx = perm[start:start + batch]
            opt.zero_grad()
            F.cross_entropy(F.linear(xs[idx], pw, pb), y[idx]).backward()
            for group in opt.param_groups:
                group["lr"] = lr0 * 0.5 * (1 + math.cos(math.pi * step / total))
            opt.step()
            step += 1
    out.update({"probe.x": xs.numpy(), "probe.w": pw.detach().numpy(), "probe.b": pb.detach().numpy()})
    sn.write_safetensors(job["output"], out)


if __name__ == "__main__":
    main(sys.argv[1])
