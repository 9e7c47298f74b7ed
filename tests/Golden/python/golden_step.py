"""Golden training step: one SimCLR step of SimClr.Native against PyTorch, and one LARS update against the
official SimCLR rule (google-research/simclr, lars_optimizer.py), re-derived here.

PyTorch runs in float64 on SimClr.Native's values (float32 ones widen exactly), whatever precision our side
ran in: the reference then carries no rounding error of its own, and what the test measures is ours alone.
(PyTorch's own float32 step can be further from that truth than ours: on the ResNet-18 ImageNet-stem case
its conv1 gradient is 7e-3 of the max away from float64, ours 1.5e-5.)

job.json: {"cases": [{"name", "before", "ours", "output"}]}. "before" holds the model state under torchvision
names (parameters, BN running statistics, num_batches_tracked), "momentum.<name>" (the LARS state before the
step), "views" [2B, 3, H, W] and metadata (arch, width, stem, head sizes, temperature, LARS settings). "ours"
holds SimClr.Native's gradients (float32 or float64, as metadata "dtype" says; the reference runs in the same) ("grad.<name>"), which the LARS reference is applied to, so the LARS check is
independent of any gradient difference. Writes for each case, in float64:
  loss                    NT-Xent of PyTorch's forward (BN in training mode)
  grad.<name>             PyTorch's autograd gradient of every parameter
  <name>                  every BN buffer after the forward (running_mean, running_var, num_batches_tracked)
  param.<name>, momentum.<name>   the official LARS rule applied to SimClr.Native's gradients
"""
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

import simclr_native as sn


def nt_xent(z, temperature):
    """SimCLR's loss: rows i and (i + N) mod 2N are positives; every other row is a negative; mean over 2N rows."""
    rows = z.shape[0]
    n = rows // 2
    zn = F.normalize(z, dim=1)
    logits = zn @ zn.t() / temperature
    logits = logits.masked_fill(torch.eye(rows, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, rows), torch.arange(0, n)])
    return F.cross_entropy(logits, targets)


def lars_reference(w, g, v, lr, momentum, weight_decay, eeta, excluded):
    """lars_optimizer.py, classic momentum, no Nesterov: weight decay is added to the gradient and the trust
    ratio eeta * |w| / |g| is used unless the variable is excluded (exclude_from_layer_adaptation defaults to
    exclude_from_weight_decay); trust is 1 when either norm is 0; v' = m v + lr trust g; w' = w - v'."""
    w, g, v = (np.asarray(a, dtype=np.float64) for a in (w, g, v))
    if weight_decay and not excluded:
        g = g + weight_decay * w
    trust = 1.0
    if not excluded:
        w_norm, g_norm = np.linalg.norm(w), np.linalg.norm(g)
        trust = eeta * w_norm / g_norm if w_norm > 0 and g_norm > 0 else 1.0
    v_next = momentum * v + lr * trust * g
    return w - v_next, v_next


def run(case):
    before, meta = sn.read_safetensors(case["before"])
    ours, _ = sn.read_safetensors(case["ours"])
    encoder = sn.resnet(meta["arch"], float(meta["width"]), meta["stem"])
    head = sn.projection_head(int(meta["feature_dim"]), int(meta["head_hidden"]), int(meta["head_out"]), int(meta["head_layers"]))
    model = torch.nn.ModuleDict({"encoder": encoder, "head": head}).double()

    def state_of(module, prefix):
        return {k: torch.from_numpy(before[prefix + k].copy()) for k in module.state_dict()}  # load_state_dict widens to float64

    encoder.load_state_dict(state_of(encoder, ""))
    head.load_state_dict(state_of(head, "head."))
    model.train()
    loss = nt_xent(head(encoder(torch.from_numpy(before["views"].astype(np.float64)))), float(meta["temperature"]))
    loss.backward()

    out = {"loss": np.array([loss.item()])}
    lr, momentum, wd, eeta = (float(meta[k]) for k in ("lr", "momentum", "weight_decay", "trust_coefficient"))
    for prefix, module in (("", encoder), ("head.", head)):
        for name, buf in module.named_buffers():
            out[prefix + name] = buf.numpy().copy()
        for mod_name, mod in module.named_modules():
            for p_name, p in mod.named_parameters(recurse=False):
                full = prefix + (f"{mod_name}.{p_name}" if mod_name else p_name)
                out["grad." + full] = p.grad.numpy().copy()
                # The official run excludes ['batch_normalization', 'bias']: every BN parameter and every bias.
                excluded = isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) or p_name == "bias"
                w_next, v_next = lars_reference(before[full], ours["grad." + full], before["momentum." + full], lr, momentum, wd, eeta, excluded)
                out["param." + full] = w_next
                out["momentum." + full] = v_next
    sn.write_safetensors(case["output"], out)


def main(job_path):
    with open(job_path) as f:
        job = json.load(f)
    for case in job["cases"]:
        run(case)


if __name__ == "__main__":
    main(sys.argv[1])
