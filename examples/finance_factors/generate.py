"""Writes data/ for finance_factors: 4,000 days of twelve daily factors and next-day returns.

Four factors carry a weak real signal about the next day's return (one of them with a negative
sign); the other eight are noise. The factors come in very different raw units. Days 0-999 are
public (in-sample); days 1000-3999 are private (out-of-sample), where the evaluator trades.
Deterministic (numpy's default_rng(seed)); rerun with `python generate.py`.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 20240611
DAYS = 4000
IN_SAMPLE = 1000
NAMES = [f"f{k:02d}" for k in range(12)]
# Correlation of each standardised factor with the next day's return (the true signal).
BETAS = [0.0, 0.08, 0.0, 0.0, 0.06, 0.0, 0.0, -0.07, 0.0, 0.0, 0.05, 0.0]
# Persistence (AR(1) coefficient) and raw unit of each factor.
PERSISTENCE = [0.9, 0.7, 0.95, 0.5, 0.8, 0.0, 0.9, 0.6, 0.3, 0.85, 0.75, 0.2]
UNITS = [3.0, 0.5, 1.0, 8.0, 1.0, 0.3, 2.0, 1.5, 0.8, 5.0, 1.0, 0.6]
DAILY_VOL = 0.01
DRIFT = 0.0004  # the asset rises ~10% a year on average: staying flat is not free


def simulate():
    rng = np.random.default_rng(SEED)
    z = np.zeros((DAYS, len(NAMES)))
    phi = np.array(PERSISTENCE)
    z[0] = rng.standard_normal(len(NAMES))
    for t in range(1, DAYS):
        z[t] = phi * z[t - 1] + np.sqrt(1 - phi**2) * rng.standard_normal(len(NAMES))
    betas = np.array(BETAS)
    noise = rng.standard_normal(DAYS) * np.sqrt(1 - np.sum(betas**2))
    returns = DRIFT + DAILY_VOL * (z @ betas + noise)  # row t: the return from day t to t+1
    return z * np.array(UNITS), returns


def write_csv(path, factors, returns):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(["day", *NAMES, "next_return"])]
    for day, (row, ret) in enumerate(zip(factors, returns, strict=True)):
        cells = [str(day), *(f"{v:.4f}" for v in row), f"{ret:.6f}"]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    factors, returns = simulate()
    write_csv(HERE / "data" / "public" / "in_sample.csv", factors[:IN_SAMPLE], returns[:IN_SAMPLE])
    write_csv(HERE / "data" / "private" / "out_of_sample.csv", factors[IN_SAMPLE:],
              returns[IN_SAMPLE:])
