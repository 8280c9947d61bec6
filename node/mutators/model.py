"""Model-based numeric search: Optuna's TPE, asked and told, over a structure's knobs, fitted
to every observation the node holds of that structure. The only module that imports optuna
(lazily: `swarm --help` never pays for it)."""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from node.mutators.memory import MODEL_RETUNE, MODEL_TUNE, Observation, SearchMemory, Structure
from node.mutators.patch import make_diff
from node.mutators.structure import Knob, Shape, knob_text
from playbook import parse
from research_dag import MAX_SOURCE, quiet_warnings
from research_dag import Change as Described

STUDIES = 8  # structures whose fitted study is kept (the most recently asked)
WARM_START = 256  # a parent structure's newest observations a new structure starts from
IMPORTANCE_WINDOW = 256  # newest observations the knobs' importance is measured on
IMPORTANCE_FLOOR = 0.1  # every knob keeps a chance of being chosen
ASKS = 4  # suggestions tried before giving up on one that is new and changes something
# Asked trials are told as failed (the evaluation comes back as an observation instead);
# past this many trials a study is refitted from the observations alone.
MAX_TRIALS = 3 * 2048
TINY = 1e-100  # positive anchors below this get a linear range (a log scale needs low > 0)
HYPOTHESIS = "the model of this structure's evaluations expects a better score there"
# A proposal is either the knob(s) chosen by importance or TPE's whole suggestion (a "joint"
# retune of the knobs it changes: at most JOINT_KNOBS, drawn by importance), drawn by Thompson
# over how each size fared in this structure's newest evaluations. False: importance-chosen
# knobs only (the harness compares).
JOINT = True
WHOLE_ONLY = False  # every model proposal is the whole suggestion (measured: bench --whole-only)
MULTIVARIATE = True  # TPE's joint density over the knobs (False: one per knob, independent)
JOINT_KNOBS = 8  # an experiment lists at most 8 changes (research_dag's records: MAX_CHANGES)
# (pseudo-tries, pseudo-wins) the whole suggestion's side of that draw starts with (the harness
# measures: bench --joint-prior); (0, 0): Beta(1, 1) for both sizes.
JOINT_PRIOR = (0.0, 0.0)
# A knob, its current value and the rng -> a value to propose instead of the model's, or None.
ValuePrior = Callable[[Knob, float, random.Random], float | None]


@dataclass(frozen=True)
class Suggestion:
    """What the model proposes: knob index -> new value, and the files that makes."""

    values: dict[int, float]
    files: dict[str, str]
    kind: str
    description: str
    changes: tuple[Described, ...]


@dataclass
class _Study:
    study: Any  # optuna.Study (typed loosely: optuna is imported lazily)
    names: tuple[str, ...]
    distributions: dict[str, Any]
    knobs: tuple[Knob, ...]
    added: int  # the structure's observations already in the study
    trials: int
    worst: float | None  # the worst score seen: what a failed evaluation is told


class ModelSearch:
    """One problem's fitted models, by structure. `retune`: how many knobs an importance-chosen
    proposal sets (1: the single most promising knob; more: a coordinated retune of that many);
    the other kind of proposal (JOINT) sets every knob the model's suggestion changes."""

    def __init__(self, direction: str, retune: int = 1,
                 knob_prior: Callable[[Knob], float] | None = None,
                 value_prior: ValuePrior | None = None) -> None:
        self.direction = direction
        self.retune = max(1, retune)
        # Transfer hooks (bench/bench_knowledge.py): a weight per knob multiplying its learned
        # importance, and a value drawn instead of the model's for a chosen knob (None: the
        # model's). Neither is set by a node.
        self.knob_prior = knob_prior
        self.value_prior = value_prior
        self._studies: OrderedDict[str, _Study] = OrderedDict()

    def suggest(
        self,
        memory: SearchMemory,
        best_files: dict[str, str],
        shape: Shape,
        rng: random.Random,
        allowed: Callable[[Knob], bool],
    ) -> Suggestion | None:
        """A new value for one knob (or a few) of the best strategy, from the model; None
        when no knob may change or the model repeats what was already tried."""
        structure = memory.structures.get(shape.key)
        free = [index for index, knob in enumerate(shape.knobs) if allowed(knob)]
        if structure is None or not free:
            return None
        state = self._study(memory, structure, rng)
        tried = {observation.values for observation in structure.observations}
        weights = _importance(list(structure.observations), shape.values)
        if self.knob_prior is not None:
            weights = [w * max(0.0, self.knob_prior(k)) for w, k in zip(weights, shape.knobs,
                                                                     strict=True)]
        joint = WHOLE_ONLY or (JOINT and self._joint(structure, rng))
        for _ in range(ASKS):
            params = _ask(state)
            proposed = {
                index: float(params[state.names[index]]) for index in free
                if math.isfinite(params[state.names[index]])
                and _text(shape.knobs[index], float(params[state.names[index]]))
                != _text(shape.knobs[index], shape.values[index])
            }
            if not proposed:
                continue
            count = min(len(proposed), JOINT_KNOBS) if joint else min(self.retune, len(proposed))
            chosen = _choose(sorted(proposed), weights, count, rng)
            if self.value_prior is not None:
                for index in chosen:
                    knob, current = shape.knobs[index], shape.values[index]
                    drawn = self.value_prior(knob, current, rng)
                    if (drawn is not None and math.isfinite(drawn)
                            and _text(knob, drawn) != _text(knob, current)):
                        proposed[index] = drawn
            values = list(shape.values)
            for index in chosen:
                values[index] = proposed[index]
            if tuple(values) in tried:
                continue
            suggestion = set_knobs(best_files, shape, {i: proposed[i] for i in chosen})
            if suggestion is not None:
                return suggestion
        return None

    def _joint(self, structure: Structure, rng: random.Random) -> bool:
        """Whether this proposal takes the model's whole suggestion: a Thompson draw between
        the evaluations of this structure that changed more knobs than `retune` from their
        parent and those that changed at most that many (a win: better than the parent)."""
        counts = [[0.0, 0.0], [0.0, 0.0]]  # [tries, wins] of small moves, of joint ones
        for observation in list(structure.observations)[-IMPORTANCE_WINDOW:]:
            base, score = observation.base, observation.score
            if base is None or observation.base_score is None:
                continue
            moved = sum(value != old for value, old in zip(observation.values, base, strict=True))
            if moved == 0:
                continue
            won = score is not None and math.isfinite(score) and (
                score > observation.base_score if self.direction == "maximize"
                else score < observation.base_score)
            counts[moved > self.retune][0] += 1
            counts[moved > self.retune][1] += int(won)
        counts[1][0] += JOINT_PRIOR[0]
        counts[1][1] += JOINT_PRIOR[1]
        small, joint = (rng.betavariate(1 + wins, 1 + tries - wins) for tries, wins in counts)
        return joint > small

    def _study(self, memory: SearchMemory, structure: Structure, rng: random.Random) -> _Study:
        key = structure.shape.key
        state = self._studies.get(key)
        # Refitted when too many asks piled up, or when the structure was dropped from memory
        # and came back (its count restarted).
        if state is None or state.trials > MAX_TRIALS or structure.added < state.added:
            state = self._studies[key] = _new_study(self.direction, structure, rng)
            parent = None if structure.parent is None else memory.structures.get(structure.parent)
            if parent is not None:  # warm start: the parent's observations, knobs by site
                _tell(state, _mapped(parent, structure)[-WARM_START:])
        self._studies.move_to_end(key)
        while len(self._studies) > STUDIES:
            self._studies.popitem(last=False)
        fresh = min(structure.added - state.added, len(structure.observations))
        if fresh > 0:
            _tell(state, list(structure.observations)[-fresh:])
        state.added = structure.added
        return state


def knob_range(knob: Knob, anchor: float) -> tuple[float, float, bool]:
    """(low, high, log) around a knob's anchor value: weights may change sign or vanish;
    other positive numbers scale over two decades; ints stay ints; a switch is 0 or 1 (the
    model takes it as a category)."""
    if knob.switch:
        return 0.0, 1.0, False
    if knob.integer:
        value = round(anchor)
        if value >= 1:
            return max(1, value // 4), max(value * 4, value + 4), value >= 8
        if value == 0:
            return 0, 8, False
        return value * 4, min(-1, -((-value) // 4)), False
    if knob.affordance == "weight_vector":
        spread = 4 * abs(anchor) if anchor else 1.0
        return -spread, spread, False
    if abs(anchor) < TINY:  # 0, or too close to it for a log scale
        return -1.0, 1.0, False
    if anchor > 0:
        return anchor / 10, anchor * 10, True
    return anchor * 10, anchor / 10, False


def _optuna() -> Any:
    import optuna  # lazy: ~0.6 s, and only a model-based proposal needs it

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _new_study(direction: str, structure: Structure, rng: random.Random) -> _Study:
    optuna = _optuna()
    shape = structure.shape
    names = tuple(f"k{index}" for index in range(len(shape.knobs)))
    distributions: dict[str, Any] = {}
    for name, knob, anchor in zip(names, shape.knobs, shape.values, strict=True):
        low, high, log = knob_range(knob, anchor)
        if knob.switch:
            distributions[name] = optuna.distributions.CategoricalDistribution((False, True))
        elif knob.integer:
            distributions[name] = optuna.distributions.IntDistribution(int(low), int(high), log=log)
        else:
            distributions[name] = optuna.distributions.FloatDistribution(low, high, log=log)
    sampler = optuna.samplers.TPESampler(seed=rng.getrandbits(31), multivariate=MULTIVARIATE,
                                         constant_liar=False)
    with quiet_warnings(optuna.exceptions.ExperimentalWarning):
        study = optuna.create_study(direction=direction, sampler=sampler)
    return _Study(study, names, distributions, shape.knobs, 0, 0, None)


def _tell(state: _Study, observations: Sequence[Observation]) -> None:
    """Add evaluated strategies as finished trials (values clipped into the ranges; a failed
    one scores as the worst seen, so the model learns to avoid its region)."""
    optuna = _optuna()
    worse = min if state.study.direction == optuna.study.StudyDirection.MAXIMIZE else max
    trials = []
    for observation in observations:
        if observation.score is not None and math.isfinite(observation.score):
            score = observation.score
            state.worst = score if state.worst is None else worse(state.worst, score)
        elif state.worst is None:
            continue
        else:
            score = state.worst
        params = {
            name: _clip(state.distributions[name], value)
            for name, value in zip(state.names, observation.values, strict=True)
        }
        trials.append(optuna.trial.create_trial(
            params=params, distributions=state.distributions, value=score))
    state.study.add_trials(trials)
    state.trials += len(trials)


def _ask(state: _Study) -> dict[str, Any]:
    import numpy as np

    optuna = _optuna()
    # TPE's truncated normal takes log1p(-1) = -inf on purpose when a kernel's mass is nil
    # (optuna/samplers/_tpe/_truncnorm.py `_log_diff`, e.g. a knob of 4e13 whose observed values
    # sit far out in its range); numpy reports it as a RuntimeWarning our runs must not print.
    # Its acquisition then subtracts -inf from -inf (nan for that candidate, never a value).
    with np.errstate(divide="ignore", under="ignore", invalid="ignore"):
        trial = state.study.ask(state.distributions)
    state.study.tell(trial, state=optuna.trial.TrialState.FAIL)
    state.trials += 1
    return dict(trial.params)


def _clip(distribution: Any, value: float) -> float | int | bool:
    if not hasattr(distribution, "low"):  # a switch's categories (False, True)
        return value >= 0.5
    low, high = distribution.low, distribution.high
    clipped = min(max(value, low), high)
    return round(clipped) if isinstance(low, int) else float(clipped)


def _mapped(parent: Structure, child: Structure) -> list[Observation]:
    """The parent structure's observations as the child's knobs see them: the same site takes
    the parent's value; a site the parent lacks keeps the child's anchor."""
    position = {knob.site: index for index, knob in enumerate(parent.shape.knobs)}
    where = [position.get(knob.site) for knob in child.shape.knobs]
    anchor = child.shape.values
    return [
        Observation(
            tuple(anchor[i] if at is None else observation.values[at]
                  for i, at in enumerate(where)),
            observation.score,
        )
        for observation in parent.observations
    ]


def _importance(observations: list[Observation], current: tuple[float, ...]) -> list[float]:
    """How strongly each knob's value goes with the score, monotonically or by its distance
    from the current value (a peak): the larger absolute Spearman correlation of the two."""
    import numpy as np  # optuna's dependency, lazy like it

    ok = [o for o in observations[-IMPORTANCE_WINDOW:] if o.score is not None]
    if len(ok) < 4:
        return [1.0] * len(current)
    values = np.array([o.values for o in ok], dtype=float)
    scores = np.array([o.score for o in ok], dtype=float)
    weights = []
    for column, centre in zip(values.T, current, strict=True):
        best = 0.0
        for feature in (column, np.abs(column - centre)):
            best = max(best, abs(_spearman(feature, scores)))
        weights.append(IMPORTANCE_FLOOR + best)
    return weights


def _spearman(x: Any, y: Any) -> float:
    import numpy as np

    rx = np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(float)
    ry = np.argsort(np.argsort(y, kind="stable"), kind="stable").astype(float)
    sx, sy = rx.std(), ry.std()
    if sx == 0 or sy == 0 or np.ptp(x) == 0:
        return 0.0
    return float(((rx - rx.mean()) * (ry - ry.mean())).mean() / (sx * sy))


def _choose(candidates: list[int], weights: list[float], count: int,
            rng: random.Random) -> list[int]:
    """`count` knobs drawn by importance, without replacement, in source order."""
    pool = list(candidates)
    chosen: list[int] = []
    while pool and len(chosen) < count:
        index = rng.choices(pool, [weights[i] for i in pool])[0]
        pool.remove(index)
        chosen.append(index)
    return sorted(chosen)


def _text(knob: Knob, value: float) -> str | None:
    return knob_text(knob, value)


def set_knobs(files: dict[str, str], shape: Shape, values: dict[int, float]) -> Suggestion | None:
    new = dict(files)
    parts: list[str] = []
    changes: list[Described] = []
    for path in sorted({shape.knobs[index].path for index in values}):
        data = files[path].encode("utf-8")
        for index in sorted((i for i in values if shape.knobs[i].path == path), reverse=True):
            knob = shape.knobs[index]
            text = _text(knob, values[index])
            if text is None:
                return None
            data = data[: knob.start] + text.encode("utf-8") + data[knob.end :]
        new[path] = data.decode("utf-8")
        # Past the record's bound (a longer value in a file at it) the loop refuses it, and
        # the model proposed it again: most proposals on such a best, until mutator_exhausted.
        if len(new[path]) > MAX_SOURCE or parse(new[path]) is None:
            return None
    # Nor a diff past it (a knob on a 130,000-character line): a diff is at most both files.
    if (sum(len(files[path]) + len(new[path]) for path in new) > MAX_SOURCE // 2
            and len(make_diff(files, new)) > MAX_SOURCE):
        return None
    for index in sorted(values):
        knob = shape.knobs[index]
        name = knob.site.split(":", 1)[1]
        parts.append(f"{name}: {knob.text} -> {_text(knob, values[index])} (line {knob.line})")
        if knob.switch:
            changes.append(Described(operation="toggle", affordance="switch", site=knob.site,
                                     qualifier="on" if values[index] >= 0.5 else "off"))
        else:
            changes.append(Described(operation="perturb", affordance=knob.affordance,
                                     site=knob.site))
    if len(values) == 1:
        return Suggestion(values, new, MODEL_TUNE, parts[0], tuple(changes))
    return Suggestion(values, new, MODEL_RETUNE, "retune " + "; ".join(parts), tuple(changes))


def proposal_hypothesis(count: int, observations: int) -> str:
    return f"{HYPOTHESIS} (fitted to {observations} evaluations; {count} knob(s) set)"
