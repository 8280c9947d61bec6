"""Shared helpers for the event loop benches: a trio Instrument measuring the longest task steps,
a victim SwarmNode on the in-memory network with a fake evaluator, hostile record makers, and
the problem packages they pose (generated on first use from tests/fixtures/probe into a cache
directory under the system's temporary directory)."""

from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from node.identity import Identity, sign_record  # noqa: E402
from node.loop import LoopConfig  # noqa: E402
from node.mutators import OfflineMutator  # noqa: E402
from node.net.memory import MemoryHub  # noqa: E402
from node.net.wire import SyncFetch, encode_sync_request  # noqa: E402
from node.problem import load_package  # noqa: E402
from node.store import RecordStore  # noqa: E402
from node.swarm import NodeConfig, SwarmNode  # noqa: E402
from research_dag import Experiment, Outcome, Problem, Record  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Problem packages: tests/fixtures/probe, its strategy.py padded to ~253,000 chars, and variants.

PROBE = ROOT / "tests" / "fixtures" / "probe"
PACKAGE_VERSION = 1  # bump when what a package holds changes: old cached copies are not reused
W_LINE = "[" + ", ".join(str(i / 2) for i in range(40)) + "]"  # [0.0, 0.5, ..., 19.5]
W_LINES = 1110  # the probe's strategy.py + 1,110 `Wn = [...]` lines: 253,254 chars
PLAIN_SOLVE = "def solve(public_dir):\n    return {'x': 1.0}\n"
ONE_FILE = 'mutable = ["strategy.py"]'


def padding(lines: int = W_LINES) -> str:
    """`W0 = [0.0, 0.5, ..., 19.5]`, W1, ... one a line: ~228 chars each."""
    return "".join(f"W{i} = {W_LINE}\n" for i in range(lines))


def _cache() -> Path:
    digest = hashlib.sha256(str(PACKAGE_VERSION).encode())
    for path in sorted(PROBE.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(PROBE)).encode() + b"\0" + path.read_bytes())
    return Path(tempfile.gettempdir()) / "swarm-bench-event-loop" / digest.hexdigest()[:12]


def _package(name: str, strategy: str, extra: dict[str, str] | None = None) -> Path:
    """The probe package with `strategy.py` replaced and `extra` mutable files added, made once
    (in a scratch directory then renamed into place, so a concurrent run never sees half)."""
    root = _cache() / name
    if root.exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root.parent))
    try:
        shutil.copytree(PROBE, scratch, dirs_exist_ok=True)
        (scratch / "strategy.py").write_text(strategy)
        names = ["strategy.py", *(extra or {})]
        for file, text in (extra or {}).items():
            (scratch / file).write_text(text)
        toml = (scratch / "problem.toml").read_text()
        assert ONE_FILE in toml, "tests/fixtures/probe/problem.toml changed its mutable line"
        mutable = "mutable = [" + ", ".join(f'"{n}"' for n in names) + "]"
        (scratch / "problem.toml").write_text(toml.replace(ONE_FILE, mutable))
        try:
            scratch.rename(root)
        except OSError:  # another run made it first
            if not root.exists():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return root


def bigpkg() -> Path:
    """The probe package with its strategy.py padded to 253,254 chars (MAX_SOURCE: 256,000)."""
    return _package("bigpkg", (PROBE / "strategy.py").read_text() + padding())


def package(files: int) -> Path:
    """bigpkg with `files` mutable files (the schema allows 16, each up to 256,000 chars): a
    plain strategy.py and m1.py ... of `W = 1`; the records themselves carry the big files."""
    if files == 1:
        return bigpkg()
    return _package(f"pkg{files}", PLAIN_SOLVE, {f"m{i}.py": "W = 1\n" for i in range(1, files)})


def small_package() -> Path:
    """bigpkg with a small strategy.py (no data read)."""
    return _package("smallpkg", "SCALE = 0.5\n\ndef solve(public_dir):\n    return {'x': SCALE}\n")


def wide_package(files: int = 11) -> Path:
    """bigpkg plus `files - 1` more mutable files of 253,080 chars of `W` lines each: 11 files
    make 2.8 MiB, under the package limit."""
    extra = {f"m{i}.py": padding() for i in range(1, files)}
    return _package(f"pkg{files}big", (bigpkg() / "strategy.py").read_text(), extra)


# ---------------------------------------------------------------------------------------------
# Measuring the event loop.


class SlowSteps(trio.abc.Instrument):
    """Longest time a task held the event loop without yielding, by task name. `started` starts
    as None: the step running when the instrument is added has no start, so it is skipped."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.worst: dict[str, float] = {}

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.started = time.perf_counter()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.started is None:
            return
        took = time.perf_counter() - self.started
        name = task.name.rsplit(".", 1)[-1]
        if took > self.worst.get(name, 0.0):
            self.worst[name] = took
        self.started = None

    def report(self, top: int = 5) -> str:
        items = sorted(self.worst.items(), key=lambda kv: -kv[1])[:top]
        return ", ".join(f"{name} {took * 1000:.0f} ms" for name, took in items)


@contextmanager
def measuring() -> Iterator[SlowSteps]:
    """A fresh SlowSteps attached to the running trio loop for the block."""
    steps = SlowSteps()
    trio.lowlevel.add_instrument(steps)
    try:
        yield steps
    finally:
        trio.lowlevel.remove_instrument(steps)


async def measured(fn: Callable[..., Awaitable[Any]], *args: Any, name: str,
                   repeat: int = 1) -> tuple[float, SlowSteps]:
    """Run `fn(*args)` `repeat` times, each as its own task called `name`: wall time and the
    longest steps."""
    with measuring() as steps:
        t = time.perf_counter()
        for _ in range(repeat):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(fn, *args, name=name)
        took = time.perf_counter() - t
    return took, steps


# ---------------------------------------------------------------------------------------------
# Identities, records, the victim node.


def ident(n: int) -> Identity:
    return Identity.from_seed(bytes([n]) * 32)


ATTACKER = ident(0x41)
VICTIM = ident(0x56)


def posed_problem(directory: Path | None = None, author: Identity = ATTACKER) -> Problem:
    problem = sign_record(load_package(directory or bigpkg()), author)
    assert isinstance(problem, Problem)
    return problem


def fake_evaluate(files: Any) -> Outcome:
    return Outcome(status="ok", score=1.0, strategy_fuel=1000, evaluator_fuel=1000)


def experiment(problem: Problem, text: str | dict[str, str], n: int, parent: str | None,
               score: float, author: Identity = ATTACKER, **extra: Any) -> Experiment:
    """A signed claim: `text` is the first mutable file, or a dict is the whole strategy."""
    strategy = text if isinstance(text, dict) else {problem.mutable[0]: text}
    exp = Experiment(problem=problem.id, parent=parent, strategy=strategy,
                     mutation_kind="perturb", description=f"attempt {n}",
                     outcome=Outcome(status="ok", score=score, strategy_fuel=10**6,
                                     evaluator_fuel=10**6), created_ms=n + 1, **extra)
    return resigned(exp, author)


def resigned(exp: Experiment, author: Identity = ATTACKER, **update: Any) -> Experiment:
    """`exp` with fields replaced, signed again."""
    signed = sign_record(exp.model_copy(update=update) if update else exp, author)
    assert isinstance(signed, Experiment)
    return signed


def big_text(n: int, size: int = 250_000, seed: int = 0) -> str:
    """~size chars of distinct `W = [...]` lines (poorly compressible random numbers)."""
    rng = random.Random(seed * 1_000_003 + n)
    lines = [PLAIN_SOLVE]
    total = len(lines[0])
    i = 0
    while total < size - 200:
        line = f"W{i} = [" + ", ".join(f"{rng.random():.6f}" for _ in range(12)) + "]\n"
        lines.append(line)
        total += len(line)
        i += 1
    return "".join(lines)[:size]


def big_strategy(problem: Problem, k: int) -> dict[str, str]:
    """A distinct ~250 KB text for each mutable file of `problem` (claim number `k`)."""
    if len(problem.mutable) == 1:
        return {problem.mutable[0]: big_text(k)}
    return {name: big_text(k * 100 + i) for i, name in enumerate(problem.mutable)}


def small_strategy(problem: Problem, text: str) -> dict[str, str]:
    return {name: text for name in problem.mutable}


def random_id() -> str:
    return os.urandom(32).hex()


def fill_store(path: Path, first: Iterable[Record], rest: Sequence[Record] = (),
               batch: int = 32) -> None:
    """Store `first` in one transaction, then `rest` `batch` at a time (as intake would)."""
    with RecordStore.open(path, durable=False) as store:
        store.add_many(first)
        for start in range(0, len(rest), batch):
            store.add_many(rest[start:start + batch])


@asynccontextmanager
async def victim_node(tmp: Path, hub: MemoryHub, config: NodeConfig | None = None,
                      identity: Identity = VICTIM, store_name: str = "victim.sqlite"
                      ) -> AsyncIterator[SwarmNode]:
    async with AsyncExitStack() as stack:
        network = await stack.enter_async_context(hub.open_node(identity.peer_id))
        store = stack.enter_context(RecordStore.open(tmp / store_name, durable=False))
        node = SwarmNode(identity, network, store, lambda p: fake_evaluate, OfflineMutator(),
                         config or NodeConfig(loop=LoopConfig(seed=1)))
        nursery = await stack.enter_async_context(trio.open_nursery())
        await nursery.start(node.serve)
        yield node
        nursery.cancel_scope.cancel()


@dataclass
class Served:
    """What serve_while_taking saw: the request's and the answer's sizes, and how long the
    serving and the intake each took (seconds)."""

    request_bytes: int
    answer_bytes: int = -1
    serve_s: float = float("nan")
    take_s: float = float("nan")


async def serve_while_taking(node: SwarmNode, ids: list[str], other: Record,
                             delay: float) -> Served:
    """A peer's sync fetch of `ids` (served in a worker thread, under the store lock) while,
    `delay` seconds in, intake on the trio thread takes one small record (`other`)."""
    request = encode_sync_request(SyncFetch(ids=ids))
    served = Served(request_bytes=len(request))

    async def serve() -> None:
        t0 = time.perf_counter()
        served.answer_bytes = len(await node.sync.handle(ATTACKER.peer_id, request))
        served.serve_s = time.perf_counter() - t0

    async def intake() -> None:
        await trio.sleep(delay)  # the worker has the lock by now
        t0 = time.perf_counter()
        await node.take([other])
        served.take_s = time.perf_counter() - t0

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, name="sync_serve")
        nursery.start_soon(intake, name="take")
    return served


# ---------------------------------------------------------------------------------------------
# Command line.


def run(main: Callable[..., Any], doc: str, *, flags: Sequence[str] = (),
        options: dict[str, int] | None = None, **positional: int) -> None:
    """Parse the command line and call `main` (under trio.run when it is async) with the
    optional integer positional arguments `positional` (name=default, in order), then the
    integer `options` ("--name": default), then the boolean `flags` ("--name")."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    actions = [parser.add_argument(name, nargs="?", type=int, default=default)
               for name, default in positional.items()]
    actions += [parser.add_argument(name, type=int, default=default)
                for name, default in (options or {}).items()]
    actions += [parser.add_argument(name, action="store_true") for name in flags]
    parsed = parser.parse_args()
    values = [getattr(parsed, action.dest) for action in actions]
    if inspect.iscoroutinefunction(main):
        trio.run(main, *values)
    else:
        main(*values)
