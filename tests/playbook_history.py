"""Synthetic histories of real records for the curator's tests and benchmark: problems with
small strategies, a baseline each, and attempts described in the change vocabulary."""

from __future__ import annotations

from collections.abc import Iterable

from research_dag import Change, Experiment, Metric, Outcome, Problem, Record, ResearchDag

WEIGHTED = ('WEIGHTS = {"a": 1.0, "b": -0.5, "c": 0.25}\nTHRESHOLD = 0.1\n\n\n'
            "def solve(x):\n    return x\n")
TRAINED = "LEARNING_RATE = 0.1\nEPOCHS = 20\n\n\ndef solve(x):\n    return x\n"


def make_problem(name: str, strategy: str = WEIGHTED, domains: Iterable[str] = (),
                 at: int = 0) -> Problem:
    return Problem(
        name=name, statement=f"optimise {name}", domains=list(domains) or [name],
        metric=Metric(name="score", direction="maximize"), mutable=["strategy.py"],
        files={"strategy.py": strategy.encode()}, created_ms=at,
    )


def change(klass: str, site: str = "strategy.py:X") -> Change:
    """A change of `klass`, "operation:affordance", or of a cell, "operation:affordance/q"."""
    klass, _, qualifier = klass.partition("/")
    operation, affordance = klass.split(":")
    values = {"operation": operation, "affordance": affordance, "site": site}
    return Change.model_validate({**values, **({"qualifier": qualifier} if qualifier else {})})


class History:
    """A DAG under construction: every attempt's parent is its problem's baseline (score 0.5),
    a success scores 0.6 and a failure 0.4; times increase by one per record."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = {p.name: p for p in problems}
        self.records: list[Record] = list(self.problems.values())
        self.clock = 1_000
        self.baselines: dict[str, Experiment] = {}
        for name, problem in self.problems.items():
            baseline = Experiment(
                problem=problem.id, strategy={"strategy.py": f"# baseline {name}\n"},
                outcome=Outcome(status="ok", score=0.5), created_ms=self.tick(), author="a",
            )
            self.baselines[name] = baseline
            self.records.append(baseline)

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def attempt(self, problem: str, classes: str | Iterable[str], success: bool, *,
                author: str = "a", hypothesis: str | None = None, at: int | None = None,
                site: str = "strategy.py:X") -> Experiment:
        kinds = [classes] if isinstance(classes, str) else list(classes)
        created = self.tick() if at is None else at
        experiment = Experiment(
            problem=self.problems[problem].id, parent=self.baselines[problem].id,
            strategy={"strategy.py": f"# {problem} {created} {kinds}\n"},
            mutation_kind=kinds[0] if kinds else "perturb",
            outcome=Outcome(status="ok", score=0.6 if success else 0.4),
            changes=[change(k, site) for k in kinds], hypothesis_id=hypothesis,
            created_ms=created, author=author,
        )
        self.records.append(experiment)
        return experiment

    def attempts(self, problem: str, klass: str, successes: int, failures: int, *,
                 authors: Iterable[str] = ("a",)) -> list[Experiment]:
        """`successes` then `failures` interleaved evenly, authors in turn."""
        names = list(authors)
        total = successes + failures
        made = []
        for i in range(total):
            # success i spread evenly: the i-th attempt succeeds when the running share says so
            success = (i + 1) * successes // total > i * successes // total
            made.append(self.attempt(problem, klass, success, author=names[i % len(names)]))
        return made

    def dag(self) -> ResearchDag:
        return ResearchDag(self.records)


def everything(experiment: Experiment) -> bool:
    return True
