"""Scores finance_factors: trades the strategy's rule on the private out-of-sample days.

Each day t the signal is s_t = sum_k w_k * f_k(t), divided by its in-sample standard deviation
(so the weights' overall scale does not matter). The position is sign(s_t) when |s_t| exceeds the
threshold, else 0 (and never below 0 when long_only). The day's profit is position * next_return
minus COST per unit of position change. score = annualised Sharpe ratio of the daily profits.
"""

import csv
import math

FACTORS = ["f00", "f01", "f02", "f03", "f04", "f05", "f06", "f07", "f08", "f09", "f10", "f11"]
COST = 0.0002  # 2 basis points per unit of turnover
DAYS_PER_YEAR = 252
WORST = -99.0


def read(path):
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    factors = [[float(row[name]) for name in FACTORS] for row in rows]
    returns = [float(row["next_return"]) for row in rows]
    return factors, returns


def invalid(reason):
    return {"score": WORST, "valid": False, "details": {"error": reason[:80]}}


def number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def std(values):
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def evaluate(output, public_dir, private_dir):
    if not isinstance(output, dict):
        return invalid("output must be a dict")
    weights = output.get("weights")
    threshold = output.get("threshold", 0.0)
    long_only = output.get("long_only", False)
    if not isinstance(weights, list) or len(weights) != len(FACTORS):
        return invalid(f"weights must be a list of {len(FACTORS)} numbers")
    if not all(number(w) for w in weights):
        return invalid("every weight must be a finite number")
    if not number(threshold) or threshold < 0:
        return invalid("threshold must be a finite number >= 0")
    if not isinstance(long_only, bool):
        return invalid("long_only must be a bool")
    largest = max(abs(w) for w in weights)
    if largest == 0:
        return invalid("all weights are zero")
    weights = [w / largest for w in weights]  # scale-free, and no overflow below

    in_factors, _ = read(f"{public_dir}/in_sample.csv")
    scale = std([sum(w * f for w, f in zip(weights, row, strict=True)) for row in in_factors])
    if not scale > 0:
        return invalid("the signal is constant in sample")
    factors, returns = read(f"{private_dir}/out_of_sample.csv")
    profits, position, turnover, exposed, hits = [], 0, 0, 0, 0
    for row, ret in zip(factors, returns, strict=True):
        signal = sum(w * f for w, f in zip(weights, row, strict=True)) / scale
        new = 0
        if abs(signal) > threshold:
            new = 1 if signal > 0 else -1
        if long_only and new < 0:
            new = 0
        turnover += abs(new - position)
        profits.append(new * ret - COST * abs(new - position))
        position = new
        exposed += new != 0
        hits += new * ret > 0
    spread = std(profits)
    mean = sum(profits) / len(profits)
    sharpe = mean / spread * math.sqrt(DAYS_PER_YEAR) if spread > 0 else 0.0
    if not math.isfinite(sharpe):
        return invalid("non-finite Sharpe ratio")
    return {
        "score": sharpe,
        "details": {
            "sharpe": round(sharpe, 4),
            "annual_return": round(mean * DAYS_PER_YEAR, 5),
            "turnover_per_day": round(turnover / len(profits), 4),
            "days_in_market": exposed,
            "hit_rate": round(hits / max(exposed, 1), 4),
        },
    }
