#!/usr/bin/env python3
"""The notebook's network in PyTorch on the CPU, timed one epoch at a time.

Two variants of the same math (`/work/shared/seed/notebook.txt`, cell In [3]):

* `by-hand`: the notebook's forward, loss, backward and update written with
  explicit tensor products (`addmm`, `mm`), under `torch.no_grad()`.
* `autograd`: the forward pass and a loss whose gradient is the notebook's
  gradient, differentiated by autograd and applied by `torch.optim.SGD`.
  The notebook's `backward` is the gradient of the batch MEAN of the summed
  binary cross-entropy with its `1e-8` guards,
      L = mean_b sum_j [ -y log(out + 1e-8) - (1 - y) log(1 - out + 1e-8) ],
  with out = sigmoid(h2 @ w2 + b2): dL/dout is its `dout`, the `/len(x)` and
  `np.mean` of its weight and bias gradients are the mean's 1/batch, and its
  activation derivatives (1 - h^2, h (1 - h), [h > 0]) are the exact
  derivatives autograd takes. The reported loss is that same L.

Same initialisation as the NumPy reference (np.random.seed + Glorot in the
notebook's order, drawn in float64, then cast), same data order (file order),
same epoch (training over 50,000 samples plus the forward pass and accuracy
over the 10,000 validation samples). Data loading, initialisation and one
warm-up (one step at the batch size, one at the last partial batch's size,
one validation pass, all on throwaway parameters) are not timed.
"""

import re

import common

VARIANTS = ["by-hand", "autograd"]


def make_activation(torch, activation):
    if activation == "tanh":
        return torch.tanh, lambda h: 1.0 - h ** 2
    if activation == "sigmoid":
        return torch.sigmoid, lambda h: h * (1 - h)
    return torch.relu, lambda h: (h > 0).to(h.dtype)


class ByHand:
    """The notebook's `forward`/`loss`/`backward`/`update` with explicit products."""

    def __init__(self, torch, params, activation, lr):
        self.torch = torch
        self.w0, self.b0, self.w1, self.b1, self.w2, self.b2 = params
        self.act, self.act_p = make_activation(torch, activation)
        self.lr = lr

    def forward(self, x):
        torch = self.torch
        h1 = self.act(torch.addmm(self.b0, x, self.w0))
        h2 = self.act(torch.addmm(self.b1, h1, self.w1))
        out = torch.sigmoid(torch.addmm(self.b2, h2, self.w2))
        return h1, h2, out

    def step(self, x, y):
        torch = self.torch
        n = x.shape[0]
        h1, h2, out = self.forward(x)
        loss = (-y * torch.log(out + 1e-8) - (1 - y) * torch.log(1 - out + 1e-8)).sum(1).mean()

        dout = (-y / (out + 1e-8)) + (1 - y) * (1 / (1 - out + 1e-8))
        del2 = out * (1 - out) * dout
        gw2 = torch.mm(h2.T, del2) / n
        gb2 = del2.mean(0)
        douth2 = torch.mm(del2, self.w2.T)
        del1 = self.act_p(h2) * douth2
        gw1 = torch.mm(h1.T, del1) / n
        gb1 = del1.mean(0)
        douth1 = torch.mm(del1, self.w1.T)
        del0 = self.act_p(h1) * douth1
        gw0 = torch.mm(x.T, del0) / n
        gb0 = del0.mean(0)

        for p, g in ((self.w0, gw0), (self.w1, gw1), (self.w2, gw2),
                     (self.b0, gb0), (self.b1, gb1), (self.b2, gb2)):
            p.sub_(g, alpha=self.lr)
        return loss

    def predict(self, x):
        return self.forward(x)[2]


class Autograd:
    """Autograd on the batch-mean summed BCE, plain SGD."""

    def __init__(self, torch, params, activation, lr):
        self.torch = torch
        self.params = [p.requires_grad_(True) for p in params]
        self.act, _ = make_activation(torch, activation)
        self.opt = torch.optim.SGD(self.params, lr=lr)

    def predict(self, x):
        torch = self.torch
        w0, b0, w1, b1, w2, b2 = self.params
        h1 = self.act(torch.addmm(b0, x, w0))
        h2 = self.act(torch.addmm(b1, h1, w1))
        return torch.sigmoid(torch.addmm(b2, h2, w2))

    def step(self, x, y):
        torch = self.torch
        with torch.enable_grad():
            out = self.predict(x)
            loss = (-y * torch.log(out + 1e-8) - (1 - y) * torch.log(1 - out + 1e-8)).sum(1).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
        self.opt.step()
        return loss.detach()


def main():
    args = common.parse_args(__doc__.splitlines()[0], VARIANTS)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    dtype = {"f32": torch.float32, "f64": torch.float64}[args.dtype]
    np_dtype = {"f32": np.float32, "f64": np.float64}[args.dtype]
    train_x, train_y, val_x, val_labels = common.load_mnist(np, args.mnist_dir, args.limit, np_dtype)
    train_x = torch.from_numpy(train_x)
    train_y = torch.from_numpy(train_y)
    val_x = torch.from_numpy(val_x)
    val_labels = torch.from_numpy(val_labels)
    n, batch = train_x.shape[0], args.batch
    units = [784, args.hidden, args.hidden, 10]
    model_class = {"by-hand": ByHand, "autograd": Autograd}[args.variant]
    blas_line = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    extra = {"torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
             "torch_blas": blas_line.group(1) if blas_line else None,
             "blas": common.blas_info()}

    def fresh_params():
        return [torch.from_numpy(p).to(dtype).contiguous()
                for p in common.glorot_init(np, units, args.seed)]

    with torch.no_grad():
        # Warm-up on throwaway parameters, with every shape the epoch uses: the
        # first call of a kernel pays for lazy library loading and dispatch set-up.
        warm = model_class(torch, fresh_params(), args.activation, args.lr)
        warm.step(train_x[:batch], train_y[:batch])
        if n % batch:
            warm.step(train_x[:n % batch], train_y[:n % batch])
        warm.predict(val_x)
        del warm
        for repeat in range(1, args.repeats + 1):
            model = model_class(torch, fresh_params(), args.activation, args.lr)
            for epoch in range(1, args.epochs + 1):
                with common.EpochTimer() as timer:
                    total = 0.0
                    batches = 0
                    for k in range(0, n, batch):
                        total += model.step(train_x[k:k + batch], train_y[k:k + batch]).item()
                        batches += 1
                    loss = total / batches
                    predicted = model.predict(val_x).argmax(1)
                    accuracy = 100 * int((predicted == val_labels).sum()) / len(val_labels)
                common.emit(args, "torch", args.variant, repeat, epoch, timer, loss, accuracy,
                            n, len(val_labels), extra)


if __name__ == "__main__":
    main()
