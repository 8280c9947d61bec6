"""A linear credit scorecard: approve the applicants with the lowest risk score.

An applicant's risk is a weighted sum of fourteen raw features. solve() returns the weights and
the share of applicants to approve; the evaluator applies them to held-out applicants it keeps
private and scores the profit per applicant. The training applicants
(data/public/train.csv: id, the features, defaulted 0/1) may be read here.
"""

import csv
import math

FEATURES = [  # swarm: fixed
    "income_k", "debt_to_income", "late_payments", "history_months", "utilisation_pct",
    "open_accounts", "recent_inquiries", "employment_years", "age_years", "marketing_score",
    "application_hour", "name_length", "loan_amount_k", "zip_digit",
]
# An analyst's first guess at how much each feature adds to the risk.
WEIGHTS = {
    "income_k": -1.0,
    "debt_to_income": 1.0,
    "late_payments": 1.0,
    "history_months": -1.0,
    "utilisation_pct": 1.0,
    "open_accounts": 0.5,
    "recent_inquiries": -0.5,
    "employment_years": 0.5,
    "age_years": 0.5,
    "marketing_score": 0.5,
    "application_hour": 0.5,
    "name_length": 0.5,
    "loan_amount_k": 0.5,
    "zip_digit": 0.5,
}
STANDARDIZE = False  # divide each weight by its feature's standard deviation in training
THRESHOLD = 0.8  # approve applicants whose risk is below this quantile of the training risks


def training_std(public_dir):
    with open(f"{public_dir}/train.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    stds = {}
    for name in FEATURES:
        values = [float(row[name]) for row in rows]
        mean = sum(values) / len(values)
        stds[name] = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))  # swarm: fixed
    return stds


def solve(public_dir):
    weights = [WEIGHTS.get(name, 0.0) for name in FEATURES]  # swarm: fixed
    if STANDARDIZE:
        stds = training_std(public_dir)
        weights = [w / stds[n] for w, n in zip(weights, FEATURES, strict=True)]  # swarm: fixed
    return {"weights": weights, "approve_share": THRESHOLD}
