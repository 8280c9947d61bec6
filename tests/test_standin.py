"""The stand-in model: deterministic, obeys the instructions it recognises, never raises."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from node.llm.standin import CTA_SENTENCE, standin_complete, standin_judge

CASE = "\n".join([
    "name: Tern Travel Mug",
    "price: 24",
    "audience: commuters",
    "benefit: keep coffee hot for six hours",
    "story: The double steel wall keeps heat in and condensation out. The lid locks, so it can"
    " ride in a bag.",
])
NAIVE = "You write landing-page copy. Tell the product's story."
TOLD = (
    "You write landing-page copy. Name the product. State the price. End with a call to action."
    " Keep it between 60 and 200 characters. No shouting."
)


def test_a_naive_skill_gets_naive_copy() -> None:
    text = standin_complete(NAIVE, CASE, 512)
    assert "$24" not in text
    assert CTA_SENTENCE not in text
    assert len(text) > 200
    assert "!!!" in text
    assert not standin_judge("Does it end with a call to action?", text)


def test_instructions_are_obeyed() -> None:
    text = standin_complete(TOLD, CASE, 512)
    assert text.startswith("Tern Travel Mug")
    assert "$24" in text
    assert text.endswith(CTA_SENTENCE)
    assert 60 <= len(text) <= 200
    assert "!" not in text and text.upper() != text
    assert standin_judge("Does the copy end with a call to action?", text)
    assert standin_judge("Does the copy state the price?", text)
    assert standin_judge("Does the copy name 'Tern Travel Mug'?", text)
    assert standin_judge("Is it calm, with no shouting?", text)


def test_word_limits_json_cases_and_negations() -> None:
    case = json.dumps({"name": "Quill", "price": 18, "story": "One two three. " * 40})
    text = standin_complete("Name the product. Stay under 12 words. No shouting.", case, 512)
    assert len(text.split()) <= 12 and "Quill" in text
    told_not = standin_complete("Never mention the price. Do not add a call to action.", case, 512)
    assert "$18" not in told_not and CTA_SENTENCE not in told_not


def test_max_tokens_bounds_the_reply() -> None:
    assert standin_complete(NAIVE, CASE, 5) == standin_complete(NAIVE, CASE, 512)[:20]
    assert standin_complete(NAIVE, CASE, 0) == ""


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000), st.text(max_size=3000), st.integers(-5, 10_000),
       st.text(max_size=300))
def test_hostile_text_never_raises_and_is_deterministic(
    system: str, user: str, max_tokens: int, question: str
) -> None:
    first = standin_complete(system, user, max_tokens)
    assert first == standin_complete(system, user, max_tokens)
    assert len(first) <= max(0, max_tokens) * 4
    assert isinstance(standin_judge(question, first), bool)
    assert standin_judge(question, first) == standin_judge(question, first)


def test_huge_inputs_are_read_in_bounded_prefixes() -> None:
    huge = "Name the product. " + "x" * 2_000_000
    assert standin_complete(huge, CASE * 1000, 512)
    assert standin_judge("price? " * 100_000, "$5 " * 100_000) in (True, False)
