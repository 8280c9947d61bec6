"""Scores job_scheduling: total weighted tardiness of the strategy's schedules, relative to the
private reference schedules.

The output must map every test instance to a permutation of its job indices (the order the jobs
run). Jobs run back to back in that order, a job never starting before its release time; a job's
tardiness is max(0, completion - due). Each instance's total weighted tardiness is divided by its
sum of weights times its mean processing time (so every instance counts in its own time unit), and
score = the sum of those over the instances / the same sum for the reference schedules. 1.0 matches
the reference; lower is better.
"""

import json

WORST = 1000.0


def invalid(reason):
    return {"score": WORST, "valid": False, "details": {"error": reason[:80]}}


def weighted_tardiness(jobs, order):
    t = total = 0
    for j in order:
        job = jobs[j]
        t = max(t, job["release"]) + job["processing"]
        total += job["weight"] * max(0, t - job["due"])
    return total


def scale(jobs):
    return sum(job["weight"] for job in jobs) * sum(job["processing"] for job in jobs) / len(jobs)


def evaluate(output, public_dir, private_dir):
    with open(f"{public_dir}/test.json") as handle:
        instances = json.load(handle)
    with open(f"{private_dir}/references.json") as handle:
        references = json.load(handle)
    if not isinstance(output, dict):
        return invalid("output must be a dict {instance: [job indices]}")
    ours = theirs = 0.0
    late = 0
    for name, case in instances.items():
        jobs, order = case["jobs"], output.get(name)
        if not isinstance(order, list) or not all(type(j) is int for j in order):
            return invalid(f"{name}: expected a list of job indices")
        if sorted(order) != list(range(len(jobs))):
            return invalid(f"{name}: not a permutation of the job indices")
        cost = weighted_tardiness(jobs, order)
        ours += cost / scale(jobs)
        theirs += references[name] / scale(jobs)
        late += cost > references[name]
    score = ours / theirs
    return {
        "score": score,
        "details": {
            "relative_tardiness": round(score, 4),
            "instances": len(instances),
            "worse_than_reference": late,
        },
    }
