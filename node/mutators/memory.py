"""What the search has seen on one problem: every evaluated strategy by structure (the model's
observations, the node's own and its peers'), which sites crash, and how each operator
family fared. Bounded: the newest observations, sites and shapes are kept."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from node.mutators.structure import Shape, Shapes, digest_of
from research_dag import Experiment, Problem

MODEL = "model"  # model-based numeric search (node/mutators/model.py)
STRUCTURAL = "structural"  # prune, toggle, swap: the structure changes
PERTURB = "perturb"  # random perturbation of values (the offline operators)
OFFLINE = "offline"  # the mutator whose kinds these are (OfflineMutator.name)
FAMILY_NAMES: tuple[str, ...] = (MODEL, STRUCTURAL, PERTURB)

MODEL_TUNE = "model_tune"  # one knob set by the model
MODEL_RETUNE = "model_retune"  # a few knobs set together by the model
MODEL_KINDS = (MODEL_TUNE, MODEL_RETUNE)
# Value-only offline kinds: the structure stays (node/mutators/operators.py).
PERTURB_KINDS = ("perturb_constant", "zero_constant", "rescale_list")

PER_SHAPE = 2048  # observations kept per structure (the newest)
MAX_SHAPES = 64  # structures kept (the most recently observed)
MAX_SITES = 1024  # sites whose crash counts are kept
FAMILY_WINDOW = 200  # the newest attempts the bandit learns from (the search moves on)
SEEN = 8192  # ids remembered, so that an experiment is observed once
# A peer's experiments held back until their author vouches (the newest; node/swarm.py).
PENDING = 2048
MAX_PARENTS = 1024  # parents whose children's authors are counted (the newest)
MAX_SIBLINGS = 4096  # authors counted per parent
# A site whose changes (alone) crashed at least this often, in at least this share of its
# attempts, is not changed again by that operation. A value site may fail at some values and
# not others (REPEATS = 0 fails, 1 is the best move): one or two failures prove little.
CRASHES = 3
CRASH_SHARE = 0.67
# Every status but ok fails; a timeout says more about the machine than about the change.
FAILED = ("crash", "out_of_fuel", "out_of_memory", "invalid_output", "invalid")


def family_of(kind: str, mutator: str = OFFLINE) -> str | None:
    """The operator family of an offline mutation kind; None for a baseline, or a change
    another mutator (an LLM) made."""
    if mutator != OFFLINE or kind == "baseline":
        return None
    if kind in MODEL_KINDS:
        return MODEL
    return PERTURB if kind in PERTURB_KINDS else STRUCTURAL


@dataclass(frozen=True)
class Observation:
    """One evaluated strategy of a structure: its knob values and score (None: it failed),
    and its parent's when the parent had the same structure (what a combination reuses)."""

    values: tuple[float, ...]
    score: float | None
    base: tuple[float, ...] | None = None  # the parent's knob values
    base_score: float | None = None  # the parent's score
    parent: str | None = None  # the parent's experiment id (with `base` only)


@dataclass
class Structure:
    """A structure's observations, and what the model needs to warm-start from its parent."""

    shape: Shape  # the first one observed: its knobs and values anchor the model's ranges
    parent: str | None  # the structure it was derived from (None: unknown)
    observations: deque[Observation]
    added: int = 0  # observations ever added (a model's study follows this count)


class SearchMemory:
    """Observations by structure, crash counts by (operation, site), successes by family."""

    def __init__(self, problem: Problem, shapes: Shapes | None = None) -> None:
        self.problem = problem
        self.shapes = shapes or Shapes()
        self.structures: OrderedDict[str, Structure] = OrderedDict()
        self.sites: OrderedDict[tuple[str, str], list[int]] = OrderedDict()  # [tries, crashes]
        self.families: deque[tuple[str, bool]] = deque(maxlen=FAMILY_WINDOW)
        # id -> (score, structure key, knob values) of each experiment observed
        self._seen: OrderedDict[
            str, tuple[float | None, str | None, tuple[float, ...] | None]] = OrderedDict()
        # Peers' experiments whose authors did not vouch yet, by id (`hold`, `admit`).
        self._pending: OrderedDict[str, Experiment] = OrderedDict()
        # parent id -> the authors of the experiments made from it that we hold (data or
        # not): how many evaluate from one parent at once (`siblings`).
        self._children: OrderedDict[str, set[str]] = OrderedDict()
        self._tried: OrderedDict[str, None] = OrderedDict()  # strategy digests evaluated

    def holds(self, experiment_id: str) -> bool:
        """Whether this experiment was observed (the newest SEEN are remembered)."""
        return experiment_id in self._seen

    def tried(self, files: dict[str, str]) -> bool:
        """Whether this strategy was evaluated already (here or by a peer we heard from)."""
        return digest_of(files) in self._tried

    def shape(self, files: dict[str, str]) -> Shape | None:
        return self.shapes.of(files, self.problem.mutable)

    def observe(self, experiment: Experiment) -> None:
        """Take one experiment of this problem in (again: nothing happens)."""
        if experiment.problem != self.problem.id or experiment.id in self._seen:
            return
        outcome = experiment.outcome
        score = outcome.score if outcome.status == "ok" else None
        shape = self.shape(dict(experiment.strategy))
        parent = None if experiment.parent is None else self._seen.get(experiment.parent)
        if self._pending.pop(experiment.id, None) is None:
            self._child(experiment)
        self._seen[experiment.id] = (score, None if shape is None else shape.key,
                                     None if shape is None else shape.values)
        self._tried[digest_of(experiment.strategy)] = None
        while len(self._seen) > SEEN:
            self._seen.popitem(last=False)
        while len(self._tried) > SEEN:
            self._tried.popitem(last=False)
        if outcome.status == "timeout":
            return
        if shape is not None:
            structure = None if parent is None else parent[1]
            same = parent is not None and structure == shape.key
            self._add(shape, Observation(
                shape.values, score,
                parent[2] if same and parent is not None else None,
                parent[0] if same and parent is not None else None,
                experiment.parent if same else None,
            ), structure)
        changes = experiment.changes or ()
        if len(changes) == 1:  # a crash is blamed on a site only when it was the only change
            key = (changes[0].operation, changes[0].site)
            counts = self.sites.setdefault(key, [0, 0])
            counts[0] += 1
            counts[1] += int(outcome.status in FAILED)
            self.sites.move_to_end(key)
        while len(self.sites) > MAX_SITES:
            self.sites.popitem(last=False)
        family = family_of(experiment.mutation_kind, experiment.mutator)
        if family is not None and parent is not None:
            won = score is not None and self.problem.metric.better(score, parent[0])
            self.families.append((family, won))

    def _add(self, shape: Shape, observation: Observation, parent: str | None) -> None:
        structure = self.structures.get(shape.key)
        if structure is None:
            structure = Structure(shape, parent if parent != shape.key else None,
                                  deque(maxlen=PER_SHAPE))
            self.structures[shape.key] = structure
        self.structures.move_to_end(shape.key)
        structure.observations.append(observation)
        structure.added += 1
        while len(self.structures) > MAX_SHAPES:
            self.structures.popitem(last=False)

    def crashing(self) -> frozenset[tuple[str, str]]:
        """(operation, site) pairs whose changes crash: not worth another evaluation."""
        return frozenset(
            key for key, (tries, crashes) in self.sites.items()
            if crashes >= CRASHES and crashes >= CRASH_SHARE * tries
        )

    def family_counts(self) -> dict[str, tuple[int, int]]:
        """Per family: (attempts, improvements over their parent) in the newest window."""
        counts = {name: [0, 0] for name in FAMILY_NAMES}
        for family, won in self.families:
            counts[family][0] += 1
            counts[family][1] += int(won)
        return {name: (tries, wins) for name, (tries, wins) in counts.items()}

    def hold(self, experiment: Experiment) -> None:
        """Keep a peer's experiment until its author vouches (`admit`): the vouching rule
        decides when it becomes data, not whether it arrived after the first replay."""
        if experiment.problem != self.problem.id or experiment.id in self._seen:
            return
        if experiment.id not in self._pending:
            self._child(experiment)
        self._pending[experiment.id] = experiment
        while len(self._pending) > PENDING:
            self._pending.popitem(last=False)

    def _child(self, experiment: Experiment) -> None:
        if experiment.parent is None:
            return
        authors = self._children.setdefault(experiment.parent, set())
        if len(authors) < MAX_SIBLINGS:
            authors.add(experiment.author)
        self._children.move_to_end(experiment.parent)
        while len(self._children) > MAX_PARENTS:
            self._children.popitem(last=False)

    def siblings(self, parent: str) -> int:
        """How many authors made an experiment from `parent` that we hold (data or not)."""
        return len(self._children.get(parent, ()))

    def admit(self, informs: Callable[[Experiment], bool]) -> int:
        """Observe the held experiments that are now data (their authors vouch), in arrival
        order."""
        ready = [e for e in self._pending.values() if informs(e)]
        for experiment in ready:
            self.observe(experiment)
        return len(ready)

    def observe_all(self, experiments: Iterable[Experiment]) -> None:
        for experiment in experiments:
            self.observe(experiment)
