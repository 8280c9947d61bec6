"""Writes data/ for credit_scoring: 6,000 loan applicants, 14 raw features, and who defaulted.

Eight features carry real signal about default (four raise the risk, four lower it: income,
credit history, years employed, age); six are noise (a vendor marketing score, application hour,
...). They come in very different raw units. Applicants 0-1999 are public (features and
outcome: the training set); 2000-5999 are the held-out applicants, kept private, on whom the
evaluator applies the strategy's scorecard.
Deterministic (numpy's default_rng(seed)); rerun with `python generate.py`.
"""

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 1107
TRAIN, HELD_OUT = 2000, 4000
FEATURES = [
    "income_k", "debt_to_income", "late_payments", "history_months", "utilisation_pct",
    "open_accounts", "recent_inquiries", "employment_years", "age_years", "marketing_score",
    "application_hour", "name_length", "loan_amount_k", "zip_digit",
]
# Effect of each feature's standardised latent value on the log-odds of default.
BETAS = {
    "income_k": -0.8, "debt_to_income": 0.6, "late_payments": 0.9, "history_months": -0.7,
    "utilisation_pct": 0.5, "recent_inquiries": 0.4, "employment_years": -0.4, "age_years": -0.3,
}
INTERCEPT = -1.3  # about three applicants in ten default


def raw_features(rng, z):
    """Raw, unit-laden feature columns from standard-normal latents `z` (one column each)."""
    n = z.shape[0]
    col = {name: z[:, k] for k, name in enumerate(FEATURES)}
    return {
        "income_k": np.round(np.exp(3.9 + 0.45 * col["income_k"]), 1),
        "debt_to_income": np.round(np.clip(0.35 + 0.12 * col["debt_to_income"], 0.01, 0.95), 3),
        "late_payments": rng.poisson(np.exp(-0.1 + 0.7 * col["late_payments"])).astype(float),
        "history_months": np.round(np.clip(120 + 60 * col["history_months"], 3, 480)),
        "utilisation_pct": np.round(np.clip(40 + 22 * col["utilisation_pct"], 0, 100), 1),
        "open_accounts": rng.poisson(6.0, n).astype(float),
        "recent_inquiries": rng.poisson(np.exp(0.3 + 0.5 * col["recent_inquiries"])).astype(
            float),
        "employment_years": np.round(np.clip(6 + 4 * col["employment_years"], 0, 45), 1),
        "age_years": np.round(np.clip(42 + 12 * col["age_years"], 18, 85)),
        "marketing_score": rng.integers(0, 101, n).astype(float),
        "application_hour": rng.integers(0, 24, n).astype(float),
        "name_length": rng.integers(3, 21, n).astype(float),
        "loan_amount_k": np.round(np.exp(2.5 + 0.6 * rng.standard_normal(n)), 1),
        "zip_digit": rng.integers(0, 10, n).astype(float),
    }


def simulate():
    rng = np.random.default_rng(SEED)
    n = TRAIN + HELD_OUT
    z = rng.standard_normal((n, len(FEATURES)))
    logit = INTERCEPT + sum(beta * z[:, FEATURES.index(name)] for name, beta in BETAS.items())
    defaulted = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return raw_features(rng, z), defaulted


def main():
    features, defaulted = simulate()
    public = HERE / "data" / "public"
    private = HERE / "data" / "private"
    public.mkdir(parents=True, exist_ok=True)
    private.mkdir(parents=True, exist_ok=True)
    with open(public / "train.csv", "w", newline="") as tr, \
            open(private / "held_out.csv", "w", newline="") as ho:
        train, held_out = csv.writer(tr), csv.writer(ho)
        for writer in (train, held_out):
            writer.writerow(["id", *FEATURES, "defaulted"])
        for i in range(TRAIN + HELD_OUT):
            cells = [f"{features[name][i]:g}" for name in FEATURES]
            (train if i < TRAIN else held_out).writerow([f"a{i:04d}", *cells, defaulted[i]])


if __name__ == "__main__":
    main()
