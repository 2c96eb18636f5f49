"""How hard are the synthetic faces?  Held-out verification: raw pixels vs untrained vs briefly trained CNN.

  python benchmarks/bench_synthetic.py [--identities 200] [--images 16] [--epochs 2] [--size 56]

Trains a small CNN (6 conv layers, CosFace-style normalised softmax, Adam) on ``identities × images``
synthetic faces downscaled to ``size``, then verifies 600 pairs of 100 *held-out* people (identities the
network never saw), 10-fold accuracy with flip-summed embeddings.  Raw-pixel cosine and the untrained
network are the peers measured in the same run.  Also reports render speed.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def ten_fold_accuracy(embeddings: np.ndarray, issame: np.ndarray) -> float:
    a, b = embeddings[0::2], embeddings[1::2]
    sim = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    index = np.arange(len(sim))
    accuracies = []
    for fold in np.array_split(index, 10):
        train = np.setdiff1d(index, fold)
        threshold = max(np.unique(sim[train]), key=lambda t: ((sim[train] > t) == issame[train]).mean())
        accuracies.append(((sim[fold] > threshold) == issame[fold]).mean())
    return float(np.mean(accuracies))


def small_cnn(embedding_size: int, size: int):
    import paddle.nn as nn

    def block(i, o, stride):
        return nn.Sequential(nn.Conv2D(i, o, 3, stride, 1, bias_attr=False), nn.BatchNorm2D(o), nn.PReLU(o))
    final = size // 8
    return nn.Sequential(block(3, 32, 2), block(32, 32, 1), block(32, 64, 2), block(64, 64, 1), block(64, 128, 2),
                         block(128, 128, 1), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(128 * final * final, embedding_size), nn.BatchNorm1D(embedding_size))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=200)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--size", type=int, default=56, help="training/eval resolution (renders are 112, downscaled)")
    args = parser.parse_args(argv)
    import cv2
    import paddle
    import paddle.nn.functional as F
    from prettytable import PrettyTable

    from arcface_paddle.core.images import normalize_rgb_uint8
    from arcface_paddle.preprocessing import TRAIN_MEAN, TRAIN_STD
    from arcface_paddle.synthetic.faces import SyntheticFaces
    paddle.set_device("cpu")
    paddle.seed(0)
    rng = np.random.default_rng(0)
    faces = SyntheticFaces(args.identities, args.images, seed=0)
    shrink = lambda im: cv2.resize(im, (args.size, args.size), interpolation=cv2.INTER_AREA)  # noqa: E731
    start = time.perf_counter()
    train_x = np.stack([faces.render(i, j) for i in range(args.identities) for j in range(args.images)])
    render_ms = (time.perf_counter() - start) / len(train_x) * 1000
    train_x = np.stack([shrink(im) for im in train_x])
    train_y = np.repeat(np.arange(args.identities), args.images)
    pairs, issame = faces.verification_pairs(range(10_000, 10_100), 600)
    val_x = np.stack([shrink(im) for im in pairs])

    net = small_cnn(128, args.size)
    centers = paddle.create_parameter([128, args.identities], "float32")
    optimizer = paddle.optimizer.Adam(1e-3, parameters=net.parameters() + [centers])

    def embed() -> np.ndarray:
        net.eval()
        with paddle.no_grad():
            out = (net(paddle.to_tensor(normalize_rgb_uint8(val_x, TRAIN_MEAN, TRAIN_STD))).numpy()
                   + net(paddle.to_tensor(normalize_rgb_uint8(val_x[:, :, ::-1].copy(), TRAIN_MEAN, TRAIN_STD))).numpy())
        net.train()
        return out

    table = PrettyTable(["features", "held-out verification acc (10-fold)", "train seconds"])
    table.add_row(["raw pixels (cosine)", f"{ten_fold_accuracy(val_x.reshape(len(val_x), -1).astype(np.float32), issame):.3f}", "-"])
    table.add_row(["untrained CNN", f"{ten_fold_accuracy(embed(), issame):.3f}", "-"])
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(len(train_x))
        for k in range(0, len(order), 64):
            batch = order[k:k + 64]
            x = train_x[batch].copy()
            flip = rng.random(len(batch)) < 0.5
            x[flip] = x[flip][:, :, ::-1]
            labels = paddle.to_tensor(train_y[batch])
            cos = paddle.matmul(F.normalize(net(paddle.to_tensor(normalize_rgb_uint8(x, TRAIN_MEAN, TRAIN_STD))), axis=1),
                                F.normalize(centers, axis=0))
            loss = F.cross_entropy(30.0 * (cos - 0.3 * F.one_hot(labels, args.identities)), labels)
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
        table.add_row([f"CNN after {epoch + 1} epoch(s)", f"{ten_fold_accuracy(embed(), issame):.3f}",
                       f"{time.perf_counter() - start:.0f}"])
    print(table)
    print(f"{args.identities} training identities × {args.images} images at {args.size}×{args.size}; "
          f"600 pairs of 100 held-out identities; render {render_ms:.2f} ms per 112×112 image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
