"""Attacks on the knowledge features (issue 11) as a stranger would make them: forged derived
records, hostile text in changes, patterns and hypotheses, records citing the wrong kinds, and
model replies, each reproduced against the real code with the safe outcome asserted."""

from __future__ import annotations

import html
import random
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

from hostile_peer import ATTACKER, connect, envelope, open_victim
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from playbook_history import TRAINED, History, everything, make_problem

from node.cli.changelog_markdown import md
from node.intake import refusal
from node.mutators.llm import parse_changes
from node.net import PROBLEMS_TOPIC
from node.net.memory import MemoryHub
from node.net.network import SYNC_PROTOCOL
from node.net.wire import (
    SyncFetch,
    SyncRecords,
    SyncSummary,
    decode_sync_request,
    encode_sync_response,
)
from node.problem import baseline_files, load_package
from node.sim import settle
from node.untrusted_text import BIDI, visible
from playbook import derivation
from research_dag import (
    AFFORDANCES,
    DERIVED_AUTHOR,
    MAX_LIST,
    MAX_NAME,
    OPERATIONS,
    Change,
    Experiment,
    Hypothesis,
    Outcome,
    Pattern,
    Problem,
    Record,
    ResearchDag,
    Verdict,
    decode_record,
    encode_record,
)
from research_dag.records import MAX_CHANGES
from sandbox import Runtime

PROBE = Path(__file__).parent / "fixtures" / "probe"


def _fake_pattern(rng: random.Random) -> Pattern:
    """A schema-valid derived pattern citing 3 x 256 ids that exist nowhere (the most a
    pattern cites), free to make: unsigned, author "derived"."""

    def ids() -> list[str]:
        return [f"{rng.getrandbits(256):064x}" for _ in range(MAX_LIST)]

    return Pattern(mutation_kind="prune:feature_set", operation="prune",
                   affordance="feature_set", text="pruning always wins", supporting=ids(),
                   contradicting=ids(), control=ids(), success_rate=1.0, status="live",
                   author=DERIVED_AUTHOR, created_ms=rng.getrandbits(40))


async def test_a_flood_of_forged_derived_records_is_never_stored_nor_fetched_twice(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Forged derived records cost nothing to make; they were stored without limit (disk, the
    DAG, and `missing()` listed every cited id for sync to ask peers for). Now a peer's derived
    record is taken in only when this node's own derivation makes it: a fake is counted
    (`underived`), never stored, its id remembered so sync does not fetch it again, and a
    publisher pushing more than its allowance is charged."""
    hub = MemoryHub(seed=211)
    rng = random.Random(5)
    fakes = [_fake_pattern(rng) for _ in range(600)]
    served = {fake.id: fake for fake in fakes[300:]}
    sent: Counter[str] = Counter()

    async def answer(peer: str, data: bytes) -> bytes:
        request = decode_sync_request(data)
        if isinstance(request, SyncFetch):
            response = SyncRecords.limited(served[i] for i in request.ids)
            sent.update(record.id for record in response.records)
            return encode_sync_response(response)
        return encode_sync_response(SyncSummary(sorted(served), truncated=False))

    async with open_victim(hub, runtime, tmp_path) as victim, \
            hub.open_node(ATTACKER.peer_id) as attacker:
        attacker.handle_requests(SYNC_PROTOCOL, answer)
        await connect(hub, attacker, victim)  # the victim pulls every served fake on connect
        assert set(sent) == set(served)
        for start in range(0, 300, 8):  # pushed by gossip, 8 an envelope (~400 KB)
            await attacker.publish(PROBLEMS_TOPIC, envelope(
                *(encode_record(fake) for fake in fakes[start:start + 8])))
        await settle(hub, [victim])
        assert victim.stats.received == 0 and len(victim.dag) == 0
        assert victim.dag.missing() == set()
        # by sync: 300 fetched, refused (none charged: the victim asked for them); by gossip
        # (38 envelopes, 304 records: the last repeats 4 of sync's): the allowance, then each
        # envelope more is charged until the attacker is graylisted; envelopes already queued
        # for intake by then (at most its channel's 256) are dropped too, each record once
        assert 300 + 256 < victim.stats.drops.counts["underived"] <= 300 + 304
        assert victim.network.ignores(ATTACKER.peer_id)
        assert await victim.sync_with_peers() == 0
        assert set(sent.values()) == {1}  # nothing fetched again
        # the store holds nothing of them either
        assert all(decode_record(encode_record(f)) == f for f in fakes[:1])
        assert victim.store.encoded_many(list(served)) == []


IDS = st.lists(st.integers(0, 2**256 - 1).map(lambda n: f"{n:064x}"), min_size=1,
               max_size=MAX_LIST)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["pattern", "hypothesis", "verdict"]), cited=IDS,
       signed=st.booleans(), cite_held=st.booleans())
async def test_a_derived_record_not_derived_here_costs_intake_no_read(
    runtime: Runtime, tmp_path: Path, kind: str, cited: list[str], signed: bool,
    cite_held: bool,
) -> None:
    """The class of a derived record (Pattern, Hypothesis, Verdict) this node does not derive,
    whoever signed it, citing any ids (unknown, or held ones): intake drops it as `underived`
    before reading a single cited header (a signed one citing 801 ids cost 801 index reads on
    the event loop: 128 messages held it 8.2 s), stores nothing and charges no author."""
    from node.identity import sign_record

    hub = MemoryHub(seed=212)
    async with open_victim(hub, runtime, tmp_path) as victim:
        problem = await victim.pose(load_package(PROBE))
        if cite_held:
            cited = [problem.id, *cited[1:]]
        values: dict[str, Any] = {"author": DERIVED_AUTHOR, "text": "t"}
        if kind == "pattern":
            record: Record = Pattern(mutation_kind="prune:feature_set", supporting=cited,
                                     contradicting=cited, control=cited, **values)
        elif kind == "hypothesis":
            record = Hypothesis(pattern=cited[0], problem=cited[-1], mutation_kind="x",
                                **values)
        else:
            record = Verdict(hypothesis=cited[0], result="confirmed", tests=cited,
                             control=cited, **values)
        if signed:
            record = sign_record(record.model_copy(update={"author": ATTACKER.peer_id}),
                                 ATTACKER)
        reads: list[str] = []
        header = victim.dag.header

        def counted(record_id: str) -> Any:
            reads.append(record_id)
            return header(record_id)

        victim.dag.header = counted  # type: ignore[method-assign]
        taken = await victim.take([record])
        victim.dag.header = header  # type: ignore[method-assign]
        assert (taken, reads, victim.stats.drops.counts["underived"]) == (0, [], 1)
        assert record.id not in victim.dag and victim.stats.refused == 0
        assert victim.ledger.standing_of(ATTACKER.peer_id) == 0


# ---- a peer's text in `swarm log --markdown` ------------------------------------------------

MARKDOWN_TOKENS = ["&#x202e;", "&#8238;", "&#27;", "&amp;", "&lt;b&gt;", "&", "#", "<b>", "*",
                   "_", "`", "[", "](", ")", "!", "|", "~", "\\", "https://evil.example", " ",
                   "  ", "\n", "\u202e", "\x1b", "1.", "-", ">", "=", ":", ";"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(MARKDOWN_TOKENS) | st.text(max_size=3), max_size=12))
def test_a_peers_text_renders_in_markdown_exactly_as_shown(parts: list[str]) -> None:
    """Rendered by a CommonMark renderer (markdown-it, as rich uses), a peer's text inside a
    line of the changelog is exactly the text `visible` shows: no syntax of its own (links,
    HTML, emphasis, code) and no character an entity spells. Before, `&#x202e;` in a change's
    site or a pattern's statement rendered as a raw RIGHT-TO-LEFT OVERRIDE (Trojan Source)."""
    text = "".join(parts)
    rendered = MarkdownIt("commonmark").render(f"x {md(text)}")
    expected = "x " + visible(text, one_line=True)
    assert rendered.startswith("<p>") and rendered.endswith("</p>\n"), rendered
    inner = rendered[len("<p>"):-len("</p>\n")]
    assert "<" not in inner  # no tag of its own
    assert html.unescape(inner).rstrip() == expected.rstrip()  # trailing blanks dropped
    assert not any(char in BIDI or unicodedata.category(char) == "Cc"
                   for char in html.unescape(inner))


# ---- records citing the wrong kinds ---------------------------------------------------------

def _held() -> tuple[ResearchDag, Problem, Problem, Experiment, Pattern, Hypothesis]:
    """A DAG holding two problems, a baseline, a pattern and a hypothesis for the first."""
    first = load_package(PROBE)
    second = first.model_copy(update={"name": "second"})
    baseline = Experiment(problem=first.id, strategy=baseline_files(first),
                          outcome=Outcome(status="ok", score=1.0), created_ms=1)
    pattern = Pattern(mutation_kind="perturb:constant", operation="perturb",
                      affordance="constant", text="t", supporting=[baseline.id],
                      author=DERIVED_AUTHOR, created_ms=1)
    hypothesis = Hypothesis(pattern=pattern.id, problem=first.id,
                            mutation_kind="perturb:constant", text="h", author=DERIVED_AUTHOR,
                            created_ms=max(pattern.created_ms, first.created_ms))
    return (ResearchDag([first, second, baseline, pattern, hypothesis]), first, second,
            baseline, pattern, hypothesis)


def test_an_experiment_crediting_records_that_are_not_patterns_is_refused() -> None:
    """`applied` names the patterns a proposal used as priors, so its outcome is attributed to
    them; crediting a hypothesis, a problem or an experiment instead was taken in unchecked
    (an experiment's `hypothesis_id` naming a Verdict or a Pattern is refused already)."""
    dag, first, _, baseline, pattern, hypothesis = _held()
    for wrong in (hypothesis.id, first.id, baseline.id):
        claim = baseline.model_copy(update={"parent": baseline.id, "applied": [wrong],
                                            "created_ms": 2})
        assert "applied" in (refusal(claim, dag.get, dag.header) or "")
    for wrong in (pattern.id, first.id):
        claim = baseline.model_copy(update={"parent": baseline.id, "hypothesis_id": wrong})
        assert "hypothesis" in (refusal(claim, dag.get, dag.header) or "")
    fair = baseline.model_copy(update={"parent": baseline.id, "applied": [pattern.id],
                                       "hypothesis_id": hypothesis.id, "created_ms": 2})
    assert refusal(fair, dag.get, dag.header) is None


def test_a_verdict_citing_tests_on_another_problem_than_its_hypothesis_is_refused() -> None:
    """A verdict's tests are experiments on its hypothesis's target problem; one citing
    another problem's experiments can be derived by no node (whatever each trusts)."""
    dag, _, second, baseline, _, hypothesis = _held()
    elsewhere = Experiment(problem=second.id, strategy=baseline_files(second),
                           outcome=Outcome(status="ok", score=2.0), created_ms=3)
    dag.add(elsewhere)
    for tests in ([elsewhere.id], [baseline.id, elsewhere.id]):
        verdict = Verdict(hypothesis=hypothesis.id, result="confirmed", tests=tests,
                          author=DERIVED_AUTHOR, created_ms=3)
        assert "problem" in (refusal(verdict, dag.get, dag.header) or "")
    fair = Verdict(hypothesis=hypothesis.id, result="confirmed", tests=[baseline.id],
                   author=DERIVED_AUTHOR, created_ms=max(baseline.created_ms,
                                                         hypothesis.created_ms))
    assert refusal(fair, dag.get, dag.header) is None


# ---- the cost of curation --------------------------------------------------------------------

def test_the_cached_sites_of_problems_derive_the_same_records_as_before() -> None:
    """A peer's large problem made every derivation (every 10 rounds, on the event loop) analyse
    its baseline again: ~5 s for a 256 KiB strategy (bench/bench_curation_problems.py). Now a
    node keeps each problem's sites across derivations and derives in a worker thread; the
    records are byte for byte those derived without the cache, the second time too."""
    history = History([make_problem("finance", domains=["finance"]),
                       make_problem("credit", domains=["credit"]),
                       make_problem("search", domains=["search"]),
                       make_problem("train", TRAINED, ["ml"])])
    for source in ("finance", "credit"):
        history.attempts(source, "perturb:constant", 3, 37)  # the base rate
    for _ in range(2):  # live, with two source problems
        for source in ("finance", "credit"):
            history.attempts(source, "prune:weight_vector", 5, 2, authors=("a", "b"))
    history.attempts("search", "perturb:constant", 4, 36)  # search: a target
    dag = history.dag()
    plain = derivation(dag, everything).records()
    assert any(isinstance(record, Hypothesis) for record in plain)
    cache: dict[str, dict[str, list[str]]] = {}
    for _ in range(2):
        cached = derivation(dag, everything, cache).records()
        assert [encode_record(r) for r in cached] == [encode_record(r) for r in plain]
    assert set(cache) == {problem.id for problem in dag.problems()}
    # a DAG without a live pattern analyses no problem at all
    idle: dict[str, dict[str, list[str]]] = {}
    early = History([make_problem("finance")])
    early.attempts("finance", "prune:weight_vector", 1, 3)
    derivation(early.dag(), everything, idle)
    assert idle == {}


# ---- a model reply's <changes> section --------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.text(max_size=3000) | st.lists(
    st.sampled_from(["prune", "weight_vector", ":", "`", "at", "\n", " ", "- ", "other",
                     "\x1b[2J", "\u202e", "&#x202e;", "x" * 300, "[link=x]"]),
    max_size=200).map("".join))
def test_any_changes_section_gives_at_most_8_valid_bounded_changes(section: str) -> None:
    """Whatever a model writes in `<changes>` (malformed, huge, control characters): at most
    MAX_CHANGES valid changes of bounded text, never an exception; every word of ours."""
    changes = parse_changes(section)
    assert len(changes) <= MAX_CHANGES
    for change in changes:
        assert Change.model_validate(change.model_dump()) == change
        assert change.operation in OPERATIONS and change.affordance in AFFORDANCES
        assert len(change.site) <= MAX_NAME and len(change.note) <= MAX_NAME
