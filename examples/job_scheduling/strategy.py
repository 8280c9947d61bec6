"""A priority dispatching rule for one machine: whenever it is free, run the released job with the
highest priority, a weighted sum of the job's features at that moment.

data/public/test.json holds the instances to schedule ({name: {"jobs": [{"release", "processing",
"due", "weight", "customer"}]}}); data/public/train.json holds other instances with a reference
total weighted tardiness, which a strategy may tune on. solve() returns {name: [job indices in
the order they run]}; the evaluator scores the total weighted tardiness against private
reference schedules.
"""

import json

NORMALIZE = False  # measure times in units of the instance's mean processing time (else raw)
# How much each feature of a waiting job adds to its priority (the highest runs next).
WEIGHTS = [
    1.0,  # weight: how much the job's lateness costs per time unit (1-10)
    1.0,  # processing: how long the job takes
    -1.0,  # slack: time left before the job must start to finish on time
    1.0,  # ratio: weight per unit of processing time
    0.5,  # waited: how long the job has been released
    0.5,  # customer: the customer's code (0-99)
    -0.5,  # position: the job's index in the list
]
URGENT = 0.0  # jobs whose slack is below this many mean processing times run first


def slack(job, t):
    return job["due"] - job["processing"] - t  # swarm: fixed


def features(job, index, t, unit):
    return [  # swarm: fixed
        job["weight"],
        job["processing"] / unit,
        slack(job, t) / unit,
        job["weight"] * unit / job["processing"],
        (t - job["release"]) / unit,  # swarm: fixed
        job["customer"],
        index,
    ]


def schedule(jobs):
    mean_processing = sum(job["processing"] for job in jobs) / len(jobs)
    unit = mean_processing if NORMALIZE else 1  # swarm: fixed
    left, t, order = set(range(len(jobs))), 0, []  # swarm: fixed
    while left:
        t = max(t, min(jobs[j]["release"] for j in left))
        ready = [j for j in left if jobs[j]["release"] <= t]
        urgent = [j for j in ready if slack(jobs[j], t) < URGENT * mean_processing]
        best = max(urgent or ready, key=lambda j: (  # swarm: fixed
            sum(w * f for w, f in zip(WEIGHTS, features(jobs[j], j, t, unit), strict=True)), -j))
        order.append(best)
        left.remove(best)
        t += jobs[best]["processing"]
    return order


def solve(public_dir):
    with open(f"{public_dir}/test.json") as handle:
        instances = json.load(handle)
    return {name: schedule(case["jobs"]) for name, case in instances.items()}
