"""Writes data/ for job_scheduling: 40 one-machine instances of 40 jobs with release times.

Each job has a release time, a processing time, a due date and a weight (1-10), plus a customer
code that has nothing to do with any of them. Time units differ between instances (one tick is a
second in some, a minute in others: the times of an instance are scaled by 1 to 60), so rules in
raw units do not carry across instances. Instances i00-i19 are for training, t00-t19 are the
test instances. For every instance a reference schedule (apparent-tardiness-cost dispatching,
improved by adjacent swaps) gives a reference total weighted tardiness: public for the training
instances, private for the test instances.
Deterministic (numpy's default_rng(seed)); rerun with `python generate.py`.
"""

import json
import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 31337
INSTANCES = 20  # per split
JOBS = 40
SCALES = [1, 3, 10, 60]


def instance(rng):
    scale = int(rng.choice(SCALES))
    p = rng.integers(1, 51, JOBS)
    release = np.sort(rng.integers(0, int(0.6 * p.sum()), JOBS))
    due = release + p + rng.integers(0, int(1.5 * p.mean() * 4), JOBS)
    return {
        "jobs": [
            {"release": int(release[j] * scale), "processing": int(p[j] * scale),
             "due": int(due[j] * scale), "weight": int(rng.integers(1, 11)),
             "customer": int(rng.integers(0, 100))}
            for j in rng.permutation(JOBS)
        ],
    }


def weighted_tardiness(jobs, order):
    t = total = 0
    for j in order:
        t = max(t, jobs[j]["release"]) + jobs[j]["processing"]
        total += jobs[j]["weight"] * max(0, t - jobs[j]["due"])
    return total


def atc_priority(job, t, k, mean_p):
    slack = max(0, job["due"] - job["processing"] - t)
    return job["weight"] / job["processing"] * math.exp(-slack / (k * mean_p))


def atc(jobs, k):
    """Apparent-tardiness-cost dispatching: at each free moment, the released job with the
    largest w/p * exp(-max(0, slack) / (k * mean p))."""
    mean_p = sum(job["processing"] for job in jobs) / len(jobs)
    left, t, order = set(range(len(jobs))), 0, []
    while left:
        t = max(t, min(jobs[j]["release"] for j in left))
        ready = [j for j in left if jobs[j]["release"] <= t]
        best = max(ready, key=lambda j, t=t: (atc_priority(jobs[j], t, k, mean_p), -j))
        order.append(best)
        left.remove(best)
        t += jobs[best]["processing"]
    return order


def reference(jobs):
    """The best ATC schedule over a few k, then adjacent swaps while any helps."""
    order = min((atc(jobs, k) for k in (0.5, 1, 2, 3, 5)),
                key=lambda o: weighted_tardiness(jobs, o))
    best = weighted_tardiness(jobs, order)
    improved = True
    while improved:
        improved = False
        for i in range(len(order) - 1):
            order[i], order[i + 1] = order[i + 1], order[i]
            cost = weighted_tardiness(jobs, order)
            if cost < best:
                best, improved = cost, True
            else:
                order[i], order[i + 1] = order[i + 1], order[i]
    return best


def dump(mapping):
    """JSON with one entry per line."""
    lines = [f"{json.dumps(key)}: {json.dumps(value)}" for key, value in mapping.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main():
    rng = np.random.default_rng(SEED)
    train, test, references = {}, {}, {}
    for prefix in ("i", "t"):
        for k in range(INSTANCES):
            case = instance(rng)
            name = f"{prefix}{k:02d}"
            cost = reference(case["jobs"])
            if prefix == "i":
                train[name] = {**case, "reference": cost}
            else:
                test[name] = case
                references[name] = cost
    public = HERE / "data" / "public"
    private = HERE / "data" / "private"
    public.mkdir(parents=True, exist_ok=True)
    private.mkdir(parents=True, exist_ok=True)
    (public / "train.json").write_text(dump(train), encoding="utf-8")
    (public / "test.json").write_text(dump(test), encoding="utf-8")
    (private / "references.json").write_text(dump(references), encoding="utf-8")


if __name__ == "__main__":
    main()
