"""Train the shipped LeNet-5 on Fashion-MNIST and export models/lenet.onnx.

The seeds' LeNet-5 layer table (C1 6@5x5, S2, C3 16@5x5, S4, C5 120@5x5, F6 84,
Output 10; 61,706 parameters) in its ReLU + max-pool variant, with padding 2 on
C1 so 28x28 images give C1's 28x28x6. Input: pixels/255, NCHW, no mean/std.
Seeded and deterministic on CPU; about 2-3 minutes on 2 cores.

    python models/train_lenet.py [--data DIR] [--epochs 8] [--out models/lenet.onnx]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from models.zoo import lenet5
from quant.data import Preprocess, calibration_indices, load_fashion_mnist


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="folder with the Fashion-MNIST IDX files")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(Path(__file__).with_name("lenet.onnx")))
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error(f"--epochs must be at least 1, not {args.epochs}")
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)
    pre = Preprocess()
    train_px, train_y = load_fashion_mnist("train", args.data)
    test_px, test_y = load_fashion_mnist("test", args.data)
    x, y = torch.from_numpy(pre(train_px)), torch.from_numpy(train_y.astype(np.int64))
    xt, yt = torch.from_numpy(pre(test_px)), torch.from_numpy(test_y.astype(np.int64))
    model = lenet5()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.epochs * (len(x) // 128))
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        start = time.time()
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for i in range(len(x) // 128):
            idx = order[i * 128:(i + 1) * 128]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            acc = (model(xt).argmax(1) == yt).float().mean().item()
        print(f"epoch {epoch + 1}/{args.epochs}: test top-1 {acc:.4f} ({time.time() - start:.0f} s)")
    out = Path(args.out)
    torch.onnx.export(model, (x[:1],), str(out), dynamo=True, opset_version=18, input_names=["image"],
                      output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False)
    np.savez_compressed(out.with_name(out.stem + "_calib.npz"),
                        images=train_px[calibration_indices(len(train_px))])
    print(f"wrote {out} and {out.stem}_calib.npz (float top-1 {acc:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
