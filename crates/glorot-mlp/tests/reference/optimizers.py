"""Reference values for `tests/optimizers.rs`: a few steps of every optimizer on a tiny
fixed problem, with PyTorch's documented update rules written out in NumPy (float64).

The problem: a 3-4-3 network (tanh hidden layer, softmax cross-entropy head, the loss
averaged over the batch), 8 rows in two batches of 4 taken in order, 2 epochs, so
4 steps. The initial parameters, the data and each case's hyperparameters are written
to `optimizers.json` next to this script together with the results (every parameter
after the last step, and each epoch's training loss: the mean of its batch losses,
each measured before its update), so the Rust test reads everything from there.

The rules follow the pseudocode of torch.optim.SGD (dampening 0, with and without
nesterov), torch.optim.Adam and torch.optim.AdamW (docs of PyTorch 2.x), including
the single-tensor implementation's details: the momentum buffer is the gradient
itself on the first step, Adam's first moment is `lerp(m, g, 1 - beta1)`, its
denominator is `sqrt(v) / sqrt(1 - beta2^t) + eps`.

Run:  python3 optimizers.py            (needs numpy; rewrites optimizers.json)
      python3 optimizers.py --torch    (also compares every case with torch.optim)

Cross-checked once against torch.optim (torch 2.15.0, float64) with `--torch` on
2026-12-05: every final parameter of every case agreed within 1.2e-16 absolute
(largest difference 1.110e-16, nesterov and adam_low_beta1); see `torch_check`.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np

ROWS, INPUTS, HIDDEN, CLASSES = 8, 3, 4, 3
BATCH, EPOCHS = 4, 2


def problem():
    x = np.array(
        [[math.sin(1.7 * i + 0.9 * j) + 0.3 * j for j in range(INPUTS)] for i in range(ROWS)]
    )
    labels = [i % CLASSES for i in range(ROWS)]
    w0 = np.array([[0.5 * math.sin(1.3 * i + 0.7 * j + 0.1) for j in range(HIDDEN)] for i in range(INPUTS)])
    w1 = np.array([[0.5 * math.cos(0.9 * i - 1.1 * j) for j in range(CLASSES)] for i in range(HIDDEN)])
    b0 = np.array([0.1 * j - 0.15 for j in range(HIDDEN)])
    b1 = np.array([0.05 * (j - 1) for j in range(CLASSES)])
    return x, labels, {"w0": w0, "w1": w1, "b0": b0, "b1": b1}


def loss_and_grads(p, x, y):
    n = x.shape[0]
    h = np.tanh(x @ p["w0"] + p["b0"])
    z = h @ p["w1"] + p["b1"]
    zmax = z.max(axis=1, keepdims=True)
    lse = zmax + np.log(np.exp(z - zmax).sum(axis=1, keepdims=True))
    loss = float(np.mean(-(y * (z - lse)).sum(axis=1)))
    d2 = np.exp(z - lse) - y
    d1 = (1.0 - h * h) * (d2 @ p["w1"].T)
    g = {
        "w0": x.T @ d1 / n,
        "w1": h.T @ d2 / n,
        "b0": d1.sum(axis=0) / n,
        "b1": d2.sum(axis=0) / n,
    }
    return loss, g


def lerp(m, g, w):
    # torch.lerp: self + w * (end - self) for w < 0.5, else end - (end - self) * (1 - w).
    return m + w * (g - m) if w < 0.5 else g - (g - m) * (1.0 - w)


def make_step(case):
    kind, lr = case["kind"], case["lr"]
    wd = case.get("weight_decay", 0.0)
    state = {"t": 0}

    def step(p, g):
        state["t"] += 1
        t = state["t"]
        for name in p:
            grad = g[name]
            if kind in ("sgd", "momentum", "nesterov"):
                if wd != 0.0:
                    grad = grad + wd * p[name]
                if kind != "sgd":
                    mu = case["momentum"]
                    b = state.get(name)
                    b = grad.copy() if b is None else mu * b + grad
                    state[name] = b
                    grad = grad + mu * b if kind == "nesterov" else b
                p[name] = p[name] - lr * grad
            else:
                beta1, beta2, eps = case["beta1"], case["beta2"], case["eps"]
                if kind == "adamw":
                    p[name] = p[name] * (1.0 - lr * wd)
                elif wd != 0.0:
                    grad = grad + wd * p[name]
                m, v = state.get(name, (np.zeros_like(grad), np.zeros_like(grad)))
                m = lerp(m, grad, 1.0 - beta1)
                v = v * beta2 + (1.0 - beta2) * grad * grad
                state[name] = (m, v)
                step_size = lr / (1.0 - beta1**t)
                denom = np.sqrt(v) / math.sqrt(1.0 - beta2**t) + eps
                p[name] = p[name] - step_size * (m / denom)

    return step


CASES = [
    {"name": "sgd", "kind": "sgd", "lr": 0.1},
    {"name": "sgd_weight_decay", "kind": "sgd", "lr": 0.1, "weight_decay": 0.05},
    {"name": "momentum", "kind": "momentum", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.05},
    {"name": "nesterov", "kind": "nesterov", "lr": 0.1, "momentum": 0.8},
    {"name": "adam", "kind": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.05},
    # beta1 = 0.3 takes torch.lerp's other branch (weight 0.7 >= 0.5); a large eps counts.
    {"name": "adam_low_beta1", "kind": "adam", "lr": 0.02, "beta1": 0.3, "beta2": 0.9, "eps": 1e-3},
    {"name": "adamw", "kind": "adamw", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1},
]


def train(case, x, labels, p0):
    y = np.eye(CLASSES)[labels]
    p = {k: v.copy() for k, v in p0.items()}
    step = make_step(case)
    losses = []
    for _ in range(EPOCHS):
        batch_losses = []
        for start in range(0, ROWS, BATCH):
            loss, g = loss_and_grads(p, x[start : start + BATCH], y[start : start + BATCH])
            batch_losses.append(loss)
            step(p, g)
        losses.append(sum(batch_losses) / len(batch_losses))
    return p, losses


def torch_check(x, labels, p0, results):
    import torch

    y = torch.tensor(np.eye(CLASSES)[labels])
    xt = torch.tensor(x)
    worst = 0.0
    for case in CASES:
        params = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in p0.items()}
        plist = list(params.values())
        kind, wd = case["kind"], case.get("weight_decay", 0.0)
        if kind in ("sgd", "momentum", "nesterov"):
            opt = torch.optim.SGD(
                plist, lr=case["lr"], momentum=case.get("momentum", 0.0),
                nesterov=kind == "nesterov", weight_decay=wd, foreach=False,
            )
        else:
            cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
            opt = cls(plist, lr=case["lr"], betas=(case["beta1"], case["beta2"]),
                      eps=case["eps"], weight_decay=wd, foreach=False)
        for _ in range(EPOCHS):
            for start in range(0, ROWS, BATCH):
                opt.zero_grad()
                xb, yb = xt[start : start + BATCH], y[start : start + BATCH]
                h = torch.tanh(xb @ params["w0"] + params["b0"])
                z = h @ params["w1"] + params["b1"]
                loss = -(yb * torch.log_softmax(z, dim=1)).sum(dim=1).mean()
                loss.backward()
                opt.step()
        for k, v in params.items():
            diff = float(np.max(np.abs(v.detach().numpy() - np.array(results[case["name"]]["params"][k]))))
            worst = max(worst, diff)
            print(f"{case['name']:>16} {k}: max |torch - numpy| = {diff:.3e}")
    print(f"largest difference: {worst:.3e}")


def main():
    x, labels, p0 = problem()
    results = {}
    for case in CASES:
        p, losses = train(case, x, labels, p0)
        results[case["name"]] = {
            "case": case,
            "params": {k: v.tolist() for k, v in p.items()},
            "epoch_losses": losses,
        }
    out = {
        "comment": "Written by optimizers.py (PyTorch's update rules in NumPy, float64); read by optimizers.rs.",
        "x": x.tolist(),
        "labels": labels,
        "batch_size": BATCH,
        "epochs": EPOCHS,
        "initial": {k: v.tolist() for k, v in p0.items()},
        "results": results,
    }
    path = Path(__file__).with_name("optimizers.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    if "--torch" in sys.argv:
        torch_check(x, labels, p0, results)


if __name__ == "__main__":
    main()
