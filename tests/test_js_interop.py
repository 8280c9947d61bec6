"""A js-libp2p peer (tests/js/peer.mjs, written from docs/protocol.md alone) against a real
Python node on 127.0.0.1: it joins, syncs the history, receives and verifies gossip, serves a
record the node pulls by sync, publishes a claim the node accepts (and replays: the node's
Verification reaches the JS peer) and bad records it refuses, counted by reason. The JS codec
also rebuilds the document's test vectors byte for byte.

The JS peer prints one JSON line per event and the test waits on those lines, each wait bounded.
Its packages come from tests/js/package-lock.json: `.ci/run` runs `npm ci --prefix tests/js`."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from node.identity import Identity
from node.loop import LoopConfig
from node.mutators import OfflineMutator
from node.net import PROBLEMS_TOPIC, problem_topic
from node.net.libp2p import Libp2pNetwork, open_libp2p_network
from node.net.wire import DropReason
from node.store import RecordStore
from node.swarm import NodeConfig, SwarmNode
from research_dag import Experiment, Hypothesis, Problem, Verification
from sandbox import Evaluator, Runtime

JS_DIR = Path(__file__).parent / "js"
PROTOCOL_DOC = Path(__file__).parent.parent / "docs" / "protocol.md"
STEP_S = 20.0  # bound on each step that waits for the other side
STOP_S = 5.0  # the JS peer exits this soon after it says "stopped"
PYTHON = Identity.from_seed(b"\x21" * 32)
JS_SEED = b"\x42" * 32
PING_MS = 200  # js-libp2p's keep-alive ping (10 s by default): often, so the test sees some


class JsPeer:
    """The JS peer process: commands in on stdin, JSON events out on stdout (stderr to a file)."""

    def __init__(self, process: trio.Process, log: Path) -> None:
        self.process = process
        self.log = log
        self.events: list[dict[str, Any]] = []  # every event printed so far
        self._taken: set[int] = set()  # indices of events a wait returned
        self.stopped = False
        self._buffer = b""

    async def stop(self) -> dict[str, Any]:
        """Stops the peer's libp2p node; its last event, with each connection's ping time."""
        await self.send(cmd="stop")
        event = await self.wait_event("stopped")
        self.stopped = True
        return event

    async def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(json.dumps(command).encode() + b"\n")

    async def wait_event(self, name: str, **fields: Any) -> dict[str, Any]:
        """The first event called `name` (with these field values) not waited for before, in
        the order printed; fails on an `error` event."""
        at = 0
        with trio.fail_after(STEP_S):
            while True:
                while at == len(self.events):
                    await self._read_event()
                event = self.events[at]
                if event["event"] == "error":
                    pytest.fail(f"the JS peer failed: {event['message']}")
                if at not in self._taken and event["event"] == name and all(
                    event.get(k) == v for k, v in fields.items()
                ):
                    self._taken.add(at)
                    return event
                at += 1

    async def _read_event(self) -> None:
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some()
            if not chunk:
                stderr = self.log.read_text(errors="replace")[-2000:]
                pytest.fail(f"the JS peer exited ({self.process.poll()}): {stderr}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        self.events.append(json.loads(line))


def node_command() -> str:
    """Node.js, with the JS peer's packages installed: a failure, not a skip, without them."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js (`node`, version 20 or later) is needed for the JS interop peer")
    if not (JS_DIR / "node_modules").is_dir():
        pytest.fail("the JS peer's packages are missing: run .ci/run (it runs `npm ci --prefix "
                    "tests/js`), or that npm command yourself")
    return node


@asynccontextmanager
async def open_js_peer(bootstrap: str, tmp_path: Path) -> AsyncIterator[JsPeer]:
    node = node_command()
    log = tmp_path / "js-peer.stderr"
    with log.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            [node, str(JS_DIR / "peer.mjs"), "--seed", JS_SEED.hex(), "--bootstrap", bootstrap,
             "--ping-ms", str(PING_MS)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=JS_DIR,
        )
    peer = JsPeer(process, log)
    try:
        yield peer
    finally:
        with trio.CancelScope(shield=True):
            if not peer.stopped:
                process.kill()
            with trio.move_on_after(STOP_S):
                await process.wait()
            if process.poll() is None:
                process.kill()
                await process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    await pipe.aclose()


@asynccontextmanager
async def open_python_node(runtime: Runtime, tmp_path: Path) -> AsyncIterator[SwarmNode]:
    async with AsyncExitStack() as stack:
        network = await stack.enter_async_context(open_libp2p_network(PYTHON.private_key))
        store = stack.enter_context(RecordStore.open(tmp_path / "python.sqlite"))

        def evaluator_for(problem: Problem):  # type: ignore[no-untyped-def]
            return stack.enter_context(Evaluator(runtime, problem)).evaluate

        node = SwarmNode(PYTHON, network, store, evaluator_for, OfflineMutator(),
                         NodeConfig(loop=LoopConfig(seed=1)))
        nursery = await stack.enter_async_context(trio.open_nursery())
        await nursery.start(node.serve)
        yield node
        nursery.cancel_scope.cancel()


async def wait_until_held(node: SwarmNode, record_id: str) -> None:
    # Intake has no event to wait on: a short poll, bounded (a record takes ~10 ms here).
    with trio.fail_after(STEP_S):
        while record_id not in node.store:
            await trio.sleep(0.02)


async def wait_drops(node: SwarmNode, at_least: dict[DropReason, int]) -> None:
    """Until the node has counted this many drops under each reason."""
    counts = node.stats.drops.counts
    with trio.fail_after(STEP_S):
        while any(counts[reason] < n for reason, n in at_least.items()):
            await trio.sleep(0.02)  # a validator runs as the message arrives: bounded poll


def test_the_js_codec_reproduces_the_documents_test_vectors() -> None:
    # From the values docs/protocol.md lists, the JS encoder rebuilds each vector byte for byte
    # (worked example, whole-number floats), and the JS decoder opens the given bytes.
    result = subprocess.run(
        [node_command(), str(JS_DIR / "vectors.mjs"), str(PROTOCOL_DOC)],
        capture_output=True, text=True, timeout=30, cwd=JS_DIR,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0, (lines, result.stderr[-2000:])
    assert lines[-1] == {"vectors": 4, "failures": 0}


async def test_a_js_libp2p_peer_joins_syncs_verifies_and_publishes(
    runtime: Runtime, probe_problem: Problem, tmp_path: Path
) -> None:
    node_command()  # before anything starts: the clearest failure
    async with open_python_node(runtime, tmp_path) as node:
        network = node.network
        assert isinstance(network, Libp2pNetwork)
        posed = await node.pose(probe_problem)
        await node.join_problems()  # evaluates the baseline: history for the JS peer to sync
        topic = problem_topic(posed.id)
        async with open_js_peer(network.listen_addrs()[0], tmp_path) as js:
            started = await js.wait_event("started")
            js_id = started["peer_id"]
            assert started["derived_peer_id"] == js_id == Identity.from_seed(JS_SEED).peer_id
            assert started["meshsub"][:3] == ["/meshsub/1.2.0", "/meshsub/1.1.0", "/meshsub/1.0.0"]
            await js.wait_event("connected", peer=node.me)
            # the node syncs from a peer as it connects: the JS peer answers as a responder
            await js.wait_event("served", peer=node.me, type="summary")

            # history by sync (§7), every record checked by the JS side (§4, §6)
            await js.send(cmd="sync")
            synced = await js.wait_event("synced")
            assert set(synced["ids"]) == node.store.ids()
            assert {"problem", "experiment"} <= set(synced["kinds"])

            # gossip from the node (§3): every record verified by the JS peer, on its topic
            for subscribed in (PROBLEMS_TOPIC, topic):
                await js.send(cmd="subscribe", topic=subscribed)
                await js.wait_event("subscribed", topic=subscribed)
                with trio.fail_after(STEP_S):
                    await network.wait_mesh(js_id, subscribed)
            await node.research_round()
            gossip = await js.wait_event("gossip", topic=topic)
            assert gossip["verified"] is True, gossip
            assert set(gossip["ids"]) <= node.store.ids()
            assert set(gossip["authors"]) == {node.me}

            # a record the JS peer authors, with whole-number floats, is accepted
            await js.send(cmd="publish", record="experiment", problem=posed.id, topic=topic)
            good = await js.wait_event("published", bad=None)
            assert good["recipients"] == [node.me]
            await wait_until_held(node, good["id"])
            accepted = node.store.get(good["id"])
            assert isinstance(accepted, Experiment) and accepted.author == js_id
            assert accepted.outcome.score == 1e9 and isinstance(accepted.outcome.score, float)
            assert accepted.outcome.details == {"label": 3, "ratio": 2.0}
            assert [type(accepted.outcome.details[k]) for k in ("label", "ratio")] == [int, float]

            # records only the JS peer holds reach the node by the node's sync: a signed
            # experiment is taken in; a derived pattern, unsigned (§5 "Derived records"), is
            # valid on the wire but this node does not derive it, so it is counted and dropped
            await js.send(cmd="publish", record="pattern", hold=True)
            pattern = await js.wait_event("held")
            await js.send(cmd="publish", record="experiment", problem=posed.id, hold=True)
            synced = await js.wait_event("held")
            underived = node.stats.drops.counts["underived"]
            assert await node.sync.sync_with(js_id) == 1
            assert node.store.get(pattern["id"]) is None
            assert node.stats.drops.counts["underived"] == underived + 1
            held_here = node.store.get(synced["id"])
            assert isinstance(held_here, Experiment) and held_here.author == js_id

            # §7 summaries: a problem filter lists every problem and that problem's records
            # (not patterns); `after` pages; ids out of order make a request the node resets
            held = list(node.store.iter_records())
            ours = {r.id for r in held if isinstance(r, (Experiment, Hypothesis))
                    and r.problem == posed.id}
            filtered = ours | {r.id for r in held if isinstance(r, Problem)} | {
                r.id for r in held if isinstance(r, Verification) and r.experiment in ours}
            await js.send(cmd="summary", problems=[posed.id])
            summary = await js.wait_event("summary")
            assert set(summary["ids"]) == filtered and pattern["id"] not in filtered
            everything = sorted(r.id for r in held)
            await js.send(cmd="summary", after=everything[0])
            assert await js.wait_event("summary") == {
                "event": "summary", "ids": everything[1:], "truncated": False}
            await js.send(cmd="fetch", ids=everything[1::-1])
            refused_fetch = await js.wait_event("fetched")
            assert refused_fetch["error"] == "StreamResetError: stream reset", refused_fetch
            await js.send(cmd="fetch", ids=everything[:2])
            assert (await js.wait_event("fetched"))["count"] == 2

            # bad records are refused, each counted under its reason (§3 validation). Each
            # costs the JS peer 20 of its score on that topic; past -50 the node would drop its
            # messages unread, uncounted: three on the problem's topic, one on the problems topic.
            counts = node.stats.drops.counts
            expected: dict[DropReason, int] = {"signature": 1, "invalid_record": 2, "topic": 1}
            before = {reason: counts[reason] for reason in expected}
            refused = []
            for bad, on in (("signature", topic), ("float_as_int", topic), ("path", topic),
                            ("topic", PROBLEMS_TOPIC)):
                await js.send(cmd="publish", record="experiment", problem=posed.id, topic=on,
                              bad=bad)
                refused.append((await js.wait_event("published", bad=bad))["id"])
            await wait_drops(node, {reason: before[reason] + n for reason, n in expected.items()})
            assert {reason: counts[reason] - before[reason] for reason in expected} == expected
            assert not any(record_id in node.store for record_id in refused)

            # the node replays the JS peer's claim (it beats every best) and its Verification,
            # a mismatch (the strategy scores 1.0), reaches the JS peer and verifies there
            await node.catch_up()
            [verdict] = [r for r in node.store.iter_records()
                         if isinstance(r, Verification) and r.experiment == good["id"]]
            assert verdict.author == node.me and verdict.match is False
            await js.send(cmd="sync")
            assert verdict.id in (await js.wait_event("synced"))["held"]

            every_gossip = [e for e in js.events if e["event"] == "gossip"]
            assert all(e["verified"] for e in every_gossip), every_gossip

            # keep-alive: the node answered every ping in time (issue 10, point 4)
            stopped = await js.stop()
            assert stopped["disconnects"] == 0, js.events
            [connection] = stopped["connections"]
            assert connection["peer"] == node.me and connection["rtt_ms"] is not None
