"""What the search has seen on one problem: every evaluated strategy by structure (the model's
observations, the node's own and its peers'), which sites crash, and how each operator
family fared. Bounded: the newest observations, sites and shapes are kept."""

from __future__ import annotations

import bisect
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from node.mutators.structure import Shape, Shapes, digest_of
from research_dag import Change as Described
from research_dag import Experiment, Problem

MODEL = "model"  # model-based numeric search (node/mutators/model.py)
STRUCTURAL = "structural"  # prune, toggle, swap: the structure changes
PERTURB = "perturb"  # random perturbation of values (the offline operators)
OFFLINE = "offline"  # the mutator whose kinds these are (OfflineMutator.name)
FAMILY_NAMES: tuple[str, ...] = (MODEL, STRUCTURAL, PERTURB)

MODEL_TUNE = "model_tune"  # one knob set by the model
MODEL_RETUNE = "model_retune"  # a few knobs set together by the model
COMBINE = "combine_moves"  # improving moves made elsewhere added to the best (compose.py)
MODEL_KINDS = (MODEL_TUNE, MODEL_RETUNE, COMBINE)
# Value-only offline kinds: the structure stays (node/mutators/operators.py).
PERTURB_KINDS = ("perturb_constant", "zero_constant", "rescale_list")

PER_SHAPE = 2048  # observations kept per structure (the newest)
MAX_SHAPES = 64  # structures kept (the most recently observed)
MAX_SITES = 1024  # sites whose crash counts are kept
FAMILY_WINDOW = 200  # the newest attempts the bandit learns from (the search moves on)
# What one improvement counts for in the family bandit: "binary" 1 each (the default);
# "rank" its gain's rank among the window's improvements, "linear" its gain over the largest,
# so a retune that jumps would count for more than a micro-step. Measured over 20 seeds
# (bench/bench_search.py --credit; RESULTS.md "Issue 14: 20 seeds"): neither moved a median
# beyond the seed-to-seed noise, so the simplest stays.
CREDIT = "binary"
SEEN = 8192  # ids remembered, so that an experiment is observed once
# A peer's experiments held back until their author vouches (the newest; node/swarm.py),
# at most this many characters of strategies and diffs in all: anyone's experiment is held,
# and 2,048 of a stranger's with 16 files of 256 KB each pinned 8 GB.
PENDING = 2048
PENDING_CHARS = 8_000_000
MAX_PARENTS = 1024  # parents whose children's authors are counted (the newest)
MOVES = 256  # improving moves kept (the newest), with their strategies and their parents'
# Strategies kept by experiment id (a move's and its parent's), the newest, at most this many
# characters in all (a strategy may be 256 KB; finance_factors' is 2 KB).
FILES_CHARS = 8_000_000
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


@dataclass(frozen=True)
class Move:
    """An observed experiment that beat its parent: a change that may be added elsewhere."""

    child: str  # the experiment's id
    parent: str  # its parent's id
    base: str  # its parent's strategy digest (every node's baseline is one parent)
    gain: float  # how much better than the parent (> 0)
    description: str
    changes: tuple[Described, ...]


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
        # (family, gain over the parent: 0.0 when it did not improve) of the newest attempts
        self.families: deque[tuple[str, float]] = deque(maxlen=FAMILY_WINDOW)
        self._attempts: deque[str] = deque(maxlen=FAMILY_WINDOW)  # their experiments' ids
        self._authors: deque[str] = deque(maxlen=FAMILY_WINDOW)  # and authors
        # id -> (score, structure key, knob values) of each experiment observed
        self._seen: OrderedDict[
            str, tuple[float | None, str | None, tuple[float, ...] | None]] = OrderedDict()
        # Peers' experiments whose authors did not vouch yet, by id (`hold`, `admit`).
        self._pending: OrderedDict[str, Experiment] = OrderedDict()
        self._pending_chars = 0  # characters in _pending (`_held_size`)
        # parent id -> the authors of the experiments made from it that we hold (data or
        # not): how many evaluate from one parent at once (`siblings`).
        self._children: OrderedDict[str, set[str]] = OrderedDict()
        self._by_content: OrderedDict[str, set[str]] = OrderedDict()  # by the parent's digest
        self._tried: OrderedDict[str, None] = OrderedDict()  # strategy digests evaluated
        # Improving moves (the newest), the strategies of their experiments and parents by
        # id, and the experiment id (and parent) of each strategy observed, by digest.
        self.moves: deque[Move] = deque(maxlen=MOVES)
        self._files: OrderedDict[str, dict[str, str]] = OrderedDict()
        self._chars = 0  # characters in _files
        self._lineage: OrderedDict[str, tuple[str, str | None]] = OrderedDict()
        self._digests: OrderedDict[str, str] = OrderedDict()  # id -> strategy digest
        self._scores: OrderedDict[str, float | None] = OrderedDict()  # observed or held

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
        if self._unhold(experiment.id) is None:
            self._child(experiment)
        self._seen[experiment.id] = (score, None if shape is None else shape.key,
                                     None if shape is None else shape.values)
        digest = self._digest(experiment)
        self._tried[digest] = None
        if outcome.status == "ok" and digest not in self._lineage:
            self._lineage[digest] = (experiment.id, experiment.parent)
            while len(self._lineage) > SEEN:
                self._lineage.popitem(last=False)
        self._keep_files(experiment)
        self._score(experiment)
        move = self._move(experiment)
        if move is not None:
            self.moves.append(move)
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
            base = parent[0]
            gain = 0.0
            if score is not None and self.problem.metric.better(score, base):
                # A win over a failed parent (or whose gain is not a positive number) ranks first.
                gain = abs(score - base) if base is not None else float("inf")
                gain = gain if gain > 0 else float("inf")
            self.families.append((family, gain))
            self._attempts.append(experiment.id)
            self._authors.append(experiment.author)

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

    def searchers(self) -> int:
        """How many authors made the newest attempts that are data (1 for a solo run; in a
        swarm, this node and the peers that vouch: few in the first rounds)."""
        return max(1, len(set(self._authors)))

    def rejected(self, experiment_id: str) -> None:
        """Our loop's noise gate did not keep this experiment (its score was better, within
        noise): it is no improvement of its family."""
        for index in range(len(self._attempts) - 1, -1, -1):
            if self._attempts[index] == experiment_id:
                family, _ = self.families[index]
                self.families[index] = (family, 0.0)
                return

    def family_counts(self) -> dict[str, tuple[int, float]]:
        """Per family: (attempts, improvements over their parent) in the newest window; with
        CREDIT "rank" an improvement counts by its gain's rank among the window's (ties: the
        highest rank), so it is in (0, 1]."""
        gains = sorted(gain for _, gain in self.families if gain > 0)
        counts: dict[str, list[float]] = {name: [0, 0.0] for name in FAMILY_NAMES}
        for family, gain in self.families:
            counts[family][0] += 1
            if gain > 0:
                counts[family][1] += _credit(gain, gains)
        return {name: (int(tries), wins) for name, (tries, wins) in counts.items()}

    def hold(self, experiment: Experiment) -> None:
        """Keep a peer's experiment until its author vouches (`admit`): the vouching rule
        decides when it becomes data, not whether it arrived after the first replay."""
        if experiment.problem != self.problem.id or experiment.id in self._seen:
            return
        if experiment.id not in self._pending:
            self._child(experiment)
            self._pending_chars += _held_size(experiment)
        self._pending[experiment.id] = experiment
        self._score(experiment)
        self._tried[self._digest(experiment)] = None  # evaluated: not proposed again here
        while len(self._tried) > SEEN:
            self._tried.popitem(last=False)
        while len(self._pending) > PENDING or (
                self._pending_chars > PENDING_CHARS and len(self._pending) > 1):
            self._unhold(next(iter(self._pending)))

    def _unhold(self, experiment_id: str) -> Experiment | None:
        held = self._pending.pop(experiment_id, None)
        if held is not None:
            self._pending_chars -= _held_size(held)
        return held

    def _child(self, experiment: Experiment) -> None:
        if experiment.parent is None:
            return
        # By the parent's id (the combination's chance) and by its content (compose.py: every
        # node's baseline is one parent), when known.
        content = self._digests.get(experiment.parent, experiment.parent)
        for children, key in ((self._children, experiment.parent),
                              (self._by_content, content)):
            authors = children.setdefault(key, set())
            if len(authors) < MAX_SIBLINGS:
                authors.add(experiment.author)
            children.move_to_end(key)
            while len(children) > MAX_PARENTS:
                children.popitem(last=False)

    def _score(self, experiment: Experiment) -> None:
        ok = experiment.outcome.status == "ok"
        self._scores[experiment.id] = experiment.outcome.score if ok else None
        while len(self._scores) > SEEN:
            self._scores.popitem(last=False)

    def _move(self, experiment: Experiment) -> Move | None:
        """The experiment as a move, when it beat its parent (whose strategy we hold)."""
        score = self._scores.get(experiment.id)
        parent = experiment.parent
        base = None if parent is None else self._scores.get(parent)
        if (parent is None or score is None or base is None or parent not in self._digests
                or not self.problem.metric.better(score, base)):
            return None
        return Move(experiment.id, parent, self._digests[parent], abs(score - base),
                    experiment.description, tuple(experiment.changes or ()))

    def _digest(self, experiment: Experiment) -> str:
        digest = self._digests.get(experiment.id) or digest_of(experiment.strategy)
        self._digests[experiment.id] = digest
        self._digests.move_to_end(experiment.id)
        while len(self._digests) > SEEN:
            self._digests.popitem(last=False)
        return digest

    def _keep_files(self, experiment: Experiment) -> None:
        files = dict(experiment.strategy)
        self._files[experiment.id] = files
        self._chars += sum(len(text) for text in files.values())
        while self._chars > FILES_CHARS and len(self._files) > 1:
            _, dropped = self._files.popitem(last=False)
            self._chars -= sum(len(text) for text in dropped.values())

    def lineage(self, files: dict[str, str]) -> tuple[str, str, str] | None:
        """(experiment id, parent id, the parent's digest) of the first ok evaluation of this
        strategy observed; None when unknown, or a baseline."""
        found = self._lineage.get(digest_of(files))
        if found is None or found[1] is None or found[1] not in self._digests:
            return None
        return found[0], found[1], self._digests[found[1]]

    def files(self, experiment_id: str) -> dict[str, str] | None:
        """The strategy of an observed experiment (the newest, FILES_CHARS in all) or a held
        one."""
        files = self._files.get(experiment_id)
        held = self._pending.get(experiment_id)
        return files if files is not None or held is None else dict(held.strategy)

    def moves_from(self, base: str) -> list[Move]:
        """The improving moves made from a strategy (by digest: every node's baseline is one
        parent): observed ones, and held ones (a peer's whose author does not vouch yet: not
        the model's data, but a change this node may evaluate itself; compose.py)."""
        moves = [move for move in self.moves if move.base == base]
        for held in self._pending.values():
            move = self._move(held)
            if move is not None and move.base == base:
                moves.append(move)
        return moves

    def authors_from(self, parent: str) -> set[str]:
        """The authors of the experiments made from `parent` (or an identical strategy) that
        we hold, data or not."""
        return set(self._by_content.get(self._digests.get(parent, parent), ()))

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


def _held_size(experiment: Experiment) -> int:
    """What a held experiment keeps in memory, in characters: its strategy and its diff."""
    return sum(len(text) for text in experiment.strategy.values()) + len(experiment.diff)


def _credit(gain: float, gains: list[float]) -> float:
    """What one improvement of `gain` counts for among the window's sorted `gains` (0, 1]."""
    if CREDIT == "rank":
        return bisect.bisect_right(gains, gain) / len(gains)
    if CREDIT == "linear" and 0 < gains[-1] < float("inf"):
        return max(gain / gains[-1], 1e-3) if gain < float("inf") else 1.0
    return 1.0
