"""A factor-weight trading rule: hold +1, 0 or -1 units of the asset each day.

The day's signal is a weighted sum of twelve factors. solve() returns the weights and rule
settings; the evaluator applies them, day by day, to the out-of-sample period it keeps private
and scores the annualised Sharpe ratio after trading costs. The in-sample period
(data/public/in_sample.csv: day, f00..f11, next_return) may be read here.
"""

import csv
import math

FACTORS = [  # swarm: fixed
    "f00", "f01", "f02", "f03", "f04", "f05", "f06", "f07", "f08", "f09", "f10", "f11"
]
WEIGHTS = {
    "f00": 1.0,
    "f01": 1.0,
    "f02": 1.0,
    "f03": 1.0,
    "f04": 1.0,
    "f05": 1.0,
    "f06": 1.0,
    "f07": 1.0,
    "f08": 1.0,
    "f09": 1.0,
    "f10": 1.0,
    "f11": 1.0,
}
STANDARDIZE = False  # divide each weight by its factor's in-sample standard deviation
THRESHOLD = 0.5  # stay flat while |signal| is below this many standard deviations
LONG_ONLY = True  # never hold a short position


def in_sample_std(public_dir):
    with open(f"{public_dir}/in_sample.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    stds = {}
    for name in FACTORS:
        values = [float(row[name]) for row in rows]
        mean = sum(values) / len(values)
        stds[name] = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))  # swarm: fixed
    return stds


def solve(public_dir):
    weights = [WEIGHTS.get(name, 0.0) for name in FACTORS]  # swarm: fixed
    if STANDARDIZE:
        stds = in_sample_std(public_dir)
        weights = [w / stds[name] for w, name in zip(weights, FACTORS, strict=True)]  # swarm: fixed
    return {"weights": weights, "threshold": THRESHOLD, "long_only": LONG_ONLY}  # swarm: fixed
