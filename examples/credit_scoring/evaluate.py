"""Scores credit_scoring: applies the strategy's scorecard to the private held-out applicants.

An applicant's risk is r = sum_k w_k * x_k over the raw features. The cutoff is the
approve_share quantile of the training applicants' risks (data/public), so the weights' overall
scale does not matter; a held-out applicant is approved when r <= cutoff. An approved applicant
who repays earns GAIN, one who defaults loses LOSS, a rejected one changes nothing.
score = total profit / number of held-out applicants.
"""

import csv
import math

FEATURES = [
    "income_k", "debt_to_income", "late_payments", "history_months", "utilisation_pct",
    "open_accounts", "recent_inquiries", "employment_years", "age_years", "marketing_score",
    "application_hour", "name_length", "loan_amount_k", "zip_digit",
]
GAIN = 1.0  # a repaid loan's interest
LOSS = 2.5  # a default's loss, in the same units
WORST = -LOSS


def read(path):
    """The feature rows and default flags of one CSV (id, the features, defaulted)."""
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        columns = [header.index(name) for name in FEATURES]
        outcome = header.index("defaulted")
        rows = list(reader)
    features = [[float(row[c]) for c in columns] for row in rows]
    defaulted = [row[outcome] == "1" for row in rows]
    return features, defaulted


def invalid(reason):
    return {"score": WORST, "valid": False, "details": {"error": reason[:80]}}


def number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def risks(weights, rows):
    return [sum(w * x for w, x in zip(weights, row, strict=True)) for row in rows]


def evaluate(output, public_dir, private_dir):
    if not isinstance(output, dict):
        return invalid("output must be a dict")
    weights = output.get("weights")
    share = output.get("approve_share")
    if not isinstance(weights, list) or len(weights) != len(FEATURES):
        return invalid(f"weights must be a list of {len(FEATURES)} numbers")
    if not all(number(w) for w in weights):
        return invalid("every weight must be a finite number")
    if not number(share) or not 0 < share <= 1:
        return invalid("approve_share must be a number in (0, 1]")
    largest = max(abs(w) for w in weights)
    if largest == 0:
        return invalid("all weights are zero")
    weights = [w / largest for w in weights]  # scale-free, and no overflow below

    train, _ = read(f"{public_dir}/train.csv")
    ranked = sorted(risks(weights, train))
    cutoff = ranked[int(share * (len(ranked) - 1))]
    features, defaulted = read(f"{private_dir}/held_out.csv")
    approved = repaid = 0
    for risk, bad in zip(risks(weights, features), defaulted, strict=True):
        if risk <= cutoff:
            approved += 1
            repaid += not bad
    profit = GAIN * repaid - LOSS * (approved - repaid)
    score = profit / len(features)
    return {
        "score": score,
        "details": {
            "profit_per_applicant": round(score, 5),
            "approved": approved,
            "applicants": len(features),
            "default_rate_approved": round((approved - repaid) / max(approved, 1), 4),
            "default_rate_all": round(sum(defaulted) / len(defaulted), 4),
        },
    }
