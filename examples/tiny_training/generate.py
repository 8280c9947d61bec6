"""Writes data/ for tiny_training: a 3-class problem with 6 raw features.

Class 0 is a disc around the centre, classes 1 and 2 the left and right halves of the ring
around it (so the boundary is curved); 10% of labels are flipped at random. Two features carry
the geometry (in very different units); four are noise. 400 training rows are public, 1,000
validation rows private. Deterministic (numpy's default_rng(seed)); rerun with
`python generate.py`.
"""

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 3
TRAIN, VALID = 400, 1000
NOISE = 0.1
# raw feature = OFFSET + UNIT * standard value
UNITS = [4.0, 0.5, 1.0, 6.0, 0.2, 2.0]
OFFSETS = [2.0, -1.0, 0.0, 10.0, 0.5, -3.0]


def simulate(rng, n):
    u = rng.standard_normal((n, 6))
    radius = np.hypot(u[:, 0], u[:, 1])
    labels = np.where(radius < 1.0, 0, np.where(u[:, 0] < 0, 1, 2))
    flip = rng.random(n) < NOISE
    labels = np.where(flip, rng.integers(0, 3, n), labels)
    return np.array(OFFSETS) + np.array(UNITS) * u, labels


def write(path, x, y):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow([*(f"x{k}" for k in range(x.shape[1])), "label"])
        for row, label in zip(x, y, strict=True):
            out.writerow([*(f"{v:.5g}" for v in row), int(label)])


if __name__ == "__main__":
    rng = np.random.default_rng(SEED)
    x, y = simulate(rng, TRAIN + VALID)
    write(HERE / "data" / "public" / "train.csv", x[:TRAIN], y[:TRAIN])
    write(HERE / "data" / "private" / "valid.csv", x[TRAIN:], y[TRAIN:])
