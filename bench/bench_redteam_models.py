"""What hostile input costs a node's model gateway and its verifier (red team of model calls,
docs/security.md): the stand-in's host time per call on a hostile skill against the bundled
skill, the gateway's parse of hostile frames against a plain 16 KiB request, and the
evaluations a deterministic verifier runs for a claim with every response edited against an
honest claim (one evaluation per differing call was the rule before: printed for comparison).

    .venv/bin/python bench/bench_redteam_models.py
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from node.llm import EditingSession, ModelGateway, StandinProvider, parse_request, standin
from node.llm.standin import MAX_SENTENCES as BOUND
from node.llm.standin import standin_complete
from node.model_evaluations import ModelEvaluations
from node.problem import baseline_files, load_package
from research_dag import Outcome
from sandbox import Evaluator, ModelDoor, load_runtime

ROOT = Path(__file__).resolve().parent.parent
SKILL = (ROOT / "examples" / "skill_landing_copy" / "SKILL.md").read_text()
CASE = "name: Lumo Desk Lamp\nprice: 49\nbenefit: light that follows your evening"
PACKAGE = {
    "problem.toml": """name = "bench_model_code"
statement = "A code strategy that asks a model for blurbs."
mutable = ["strategy.py"]
entry = "solve"
[metric]
name = "checks"
direction = "maximize"
[budget]
fuel = 2_000_000_000
memory_mb = 128
wall_s = 60
[model]
max_calls = 64
""",
    "strategy.py": """import swarm_model
def solve(public_dir):
    return [swarm_model.complete("Name the product. State the price.",
                                 f"name: Lamp {i}\\nprice: 9", 60) for i in range(32)]
""",
    "evaluate.py": """def evaluate(output, public_dir, private_dir):
    checks = [("$9" in c) + ("order" in c.lower()) for c in output]
    return {"score": float(sum(checks))}
""",
    "data/public/x.txt": "x",
    "data/private/y.txt": "y",
}


def per_call(function: Callable[[], object], repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


class Counted:
    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator, self.count = evaluator, 0

    def evaluate(self, strategy: Mapping[str, str], door: ModelDoor | None = None) -> Outcome:
        self.count += 1
        return self.evaluator.evaluate(strategy, door)


def main() -> None:
    hostile_skill = "name: x\n" * 2048  # 16 KiB of one-line sentences
    plain = per_call(lambda: standin_complete(SKILL, CASE, 400), 200)
    hostile = per_call(lambda: standin_complete(hostile_skill, hostile_skill, 400), 50)
    standin.MAX_SENTENCES = 10**9  # every sentence read, as before the bound
    unbounded = per_call(lambda: standin_complete(hostile_skill, hostile_skill, 400), 10)
    standin.MAX_SENTENCES = BOUND
    print(f"stand-in, bundled skill: {plain * 1e3:.2f} ms a call; 16 KiB of short lines: "
          f"{hostile * 1e3:.2f} ms ({hostile / plain:.1f}x), every sentence read (before): "
          f"{unbounded * 1e3:.1f} ms ({unbounded / plain:.0f}x); 512 calls: {512 * hostile:.1f}"
          f" s (before: {512 * unbounded:.1f} s)")

    request = json.dumps({"kind": "complete", "system": "s" * 8192, "user": "u" * 8192,
                          "max_tokens": 64}).encode()
    baseline = per_call(lambda: parse_request(request), 50)
    frames = {"2 MiB of [": b"[" * (2 * 1024 * 1024),
              "1.8 MB of \\u0000": b'{"kind":"judge","question":"' + b"\\u0000" * 300_000
              + b'","output":""}',
              "invalid UTF-8": b"\xff" * (2 * 1024 * 1024)}
    for name, frame in frames.items():
        cost = per_call(lambda frame=frame: parse_request(frame), 5)  # type: ignore[misc]
        print(f"frame {name}: {cost * 1e3:.1f} ms ({cost / baseline:.0f}x a 16 KiB request)")

    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        for name, text in PACKAGE.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        problem = load_package(root)
        with Evaluator(load_runtime(), problem) as evaluator:
            gateway = ModelGateway(StandinProvider())
            files = baseline_files(problem)
            for label, edits in (("honest", {}),
                                 ("every response edited", {i: "Lamp, $9. Order now." for i in
                                                            range(32)})):
                liar = EditingSession(gateway, problem, edits)
                claimed = evaluator.evaluate(files, liar)
                counted = Counted(evaluator)
                start = time.perf_counter()
                check = ModelEvaluations(counted, problem, gateway).verify(
                    files, claimed, liar.transcript(), "bench/claim")
                took = time.perf_counter() - start
                print(f"verify, {label}: {'match' if check.match else 'disputed'}, "
                      f"{counted.count} evaluations in {took:.2f} s (one per differing call: "
                      f"{1 + len(edits)})")


if __name__ == "__main__":
    main()
