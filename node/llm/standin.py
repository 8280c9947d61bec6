"""The stand-in model: a deterministic, instruction-following text model that ships with the
code (like the in-memory network), so model-backed evaluations run offline, in demos and in CI.

It is not a language model. It writes short marketing copy from the facts in the user message
(`key: value` lines or a JSON object: name, price, benefit, audience, story) and obeys a small
set of instructions it recognises in the system prompt (the skill):

    name the product              -> the copy names the product
    state / mention the price     -> "$49" appears
    end with a call to action     -> the copy ends "Order yours today."
    between N and M characters    -> the copy fits the range (under N characters: at most N)
    under N words                 -> the copy keeps to N words
    no shouting / no capitals     -> no all-caps words, no exclamation marks
    use capitals / be exciting    -> the opposite (unless told not to shout)
    mention the audience          -> "Made for commuters."

Without an instruction it behaves like a naive model: it never states the price, has no call
to action, pads with the whole story and a stock sentence (too long) and shouts its opener.
`standin_judge` answers yes/no questions about a text the same deterministic way. Both are
pure functions of bounded prefixes of their arguments and never raise on any text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = ["MAX_STANDIN_INPUT", "standin_complete", "standin_judge"]

MAX_STANDIN_INPUT = 16_384  # characters of each argument the stand-in reads; the rest is ignored
# Sentences of the skill it reads instructions from: each costs a dozen regex searches, and a
# guest's call is answered on the host's time, not the guest's (a 16 KiB skill of 2,000 short
# lines took 36-53 ms a call, ~27 s for an evaluation's 512 calls; now 3-12 ms:
# bench/bench_redteam_models.py).
MAX_SENTENCES = 256
MAX_FIELD = 400  # characters of one fact
CTA_SENTENCE = "Order yours today."
CTA_PHRASES = (
    "order yours", "order now", "buy now", "shop now", "get yours", "get one", "try it",
    "add to cart", "sign up", "start today", "book now",
)
_FACT_KEYS = {
    "name": "name", "product": "name", "product name": "name",
    "price": "price", "cost": "price",
    "benefit": "benefit", "audience": "audience", "for": "audience",
    "story": "story", "description": "story", "features": "story",
}
_NEGATION = r"(?:\bno\b|\bnot\b|\bnever\b|\bdon'?t\b|\bwithout\b|\bavoid\b)"


@dataclass(frozen=True)
class _Instructions:
    name: bool = False
    price: bool = False
    cta: bool = False
    calm: bool = False
    shout: bool = True  # a naive model shouts its opener
    audience: bool = False
    min_chars: int = 0
    max_chars: int = 0  # 0: no limit
    max_words: int = 0  # 0: no limit


def _sentences(text: str) -> list[str]:
    """The first MAX_SENTENCES sentences of `text`, lower-cased."""
    sentences: list[str] = []
    for part in re.finditer(r"[^.!?\n]+", text):
        sentence = part.group(0).strip()
        if sentence:
            sentences.append(sentence.lower())
            if len(sentences) >= MAX_SENTENCES:
                break
    return sentences


def _said(sentences: list[str], pattern: str) -> bool:
    """Some sentence asks for `pattern` without negating it."""
    wanted = re.compile(pattern)
    negated = re.compile(_NEGATION + r"[^.]{0,40}?" + pattern)
    return any(wanted.search(s) and not negated.search(s) for s in sentences)


def _instructions(system: str) -> _Instructions:
    sentences = _sentences(system[:MAX_STANDIN_INPUT])
    text = " ".join(sentences)
    calm = any(
        re.search(pattern, s)
        for s in sentences
        for pattern in (
            r"\bno (?:shouting|capitals|all[- ]?caps|caps|exclamation)",
            r"\b(?:never|don'?t|do not) (?:shout|use (?:all[- ]?)?caps|use capitals)",
            r"\bsentence case\b", r"\bcalm (?:tone|voice)\b",
        )
    )
    shout = not calm and (
        _said(sentences, r"\b(?:use|in|with) (?:all[- ]?)?(?:caps|capitals)\b")
        or _said(sentences, r"\bexclamation marks?\b")
        or _said(sentences, r"\bbe (?:loud|exciting|excited)\b")
        or not any(word in text for word in ("tone", "voice", "style"))
    )
    min_chars = max_chars = max_words = 0
    between = re.search(r"between (\d{1,4}) and (\d{1,4}) char", text)
    if between:
        low, high = sorted((int(between.group(1)), int(between.group(2))))
        min_chars, max_chars = low, high
    else:
        under = re.search(
            r"(?:under|at most|no more than|fewer than|less than|maximum of|max) (\d{1,4}) char",
            text)
        if under:
            max_chars = int(under.group(1))
    words = re.search(
        r"(?:under|at most|no more than|fewer than|less than|maximum of|max) (\d{1,4}) words?",
        text)
    if words:
        max_words = int(words.group(1))
    return _Instructions(
        name=_said(sentences, r"\b(?:name the product|product'?s? name|name it)\b"),
        price=_said(sentences, r"\b(?:state|mention|include|give|show|quote|say)s? the price\b")
        or _said(sentences, r"\bprice (?:must|should) appear\b"),
        cta=_said(sentences, r"\bcall[- ]to[- ]action\b"),
        calm=calm,
        shout=shout,
        audience=_said(sentences, r"\b(?:mention|name|address) (?:the )?(?:audience|reader)"),
        min_chars=min_chars,
        max_chars=max_chars,
        max_words=max_words,
    )


def _clean(value: object) -> str:
    text = value if isinstance(value, str) else str(value) if isinstance(value, int | float) else ""
    return " ".join(text.split())[:MAX_FIELD]


def _facts(user: str) -> dict[str, str]:
    """The case's facts: a JSON object, or `key: value` lines; unknown keys are ignored."""
    text = user[:MAX_STANDIN_INPUT]
    facts: dict[str, str] = {}
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        for key, value in list(parsed.items())[:64]:
            field = _FACT_KEYS.get(str(key).strip().lower()[:40])
            if field and field not in facts:
                facts[field] = _clean(value)
        return facts
    for line in text.splitlines()[:200]:
        key, colon, value = line.partition(":")
        field = _FACT_KEYS.get(key.strip().lower()[:40])
        if colon and field and field not in facts:
            facts[field] = _clean(value)
    return facts


def _price(raw: str) -> str:
    found = re.search(r"\d+(?:[.,]\d+)?", raw)
    return f"${found.group(0)}" if found else ""


def _shouted(sentence: str) -> str:
    return sentence.rstrip(".!").upper() + "!!!"


def _fit(parts: list[str], optional: list[str], rules: _Instructions) -> str:
    """`parts` (kept) plus as many `optional` sentences as the length rules allow."""
    def size_ok(words: list[str]) -> bool:
        text = " ".join(words)
        if rules.max_chars and len(text) > rules.max_chars:
            return False
        return not (rules.max_words and len(text.split()) > rules.max_words)

    chosen = list(parts)
    for sentence in optional:
        if rules.cta and chosen:  # the call to action stays last
            trial = [*chosen[:-1], sentence, chosen[-1]]
        else:
            trial = [*chosen, sentence]
        if size_ok(trial):
            chosen = trial
    text = " ".join(chosen)
    if rules.max_words and len(text.split()) > rules.max_words:
        text = " ".join(text.split()[: rules.max_words])
    if rules.max_chars and len(text) > rules.max_chars:
        text = text[: rules.max_chars].rsplit(" ", 1)[0] if " " in text[: rules.max_chars] \
            else text[: rules.max_chars]
    return text


def standin_complete(system: str, user: str, max_tokens: int) -> str:
    """The stand-in's reply to a skill (`system`) applied to one case (`user`)."""
    rules = _instructions(system if isinstance(system, str) else "")
    facts = _facts(user if isinstance(user, str) else "")
    name = facts.get("name") or "our newest product"
    benefit = facts.get("benefit") or "make every day a little easier"
    audience = facts.get("audience") or "everyone"
    opener = f"{name}: {benefit}." if rules.name else f"Meet our newest idea: {benefit}."
    if rules.shout:
        opener = "Amazing news! " + _shouted(opener)
    parts = [opener]
    price = _price(facts.get("price", ""))
    if rules.price and price:
        parts.append(f"Only {price}.")
    if rules.audience:
        parts.append(f"Made for {audience}.")
    if rules.cta:
        parts.append(CTA_SENTENCE)
    story = [s.strip() for s in re.split(r"(?<=[.!?])\s+", facts.get("story", "")) if s.strip()]
    stock = (
        f"It is the perfect choice for {audience} who want to {benefit}, and once you have one "
        "you will wonder how you ever lived without it."
    )
    optional = story[:8] + ([stock] if not (rules.max_chars or rules.max_words) else [])
    text = _fit(parts, optional, rules)
    if rules.min_chars and len(text) < rules.min_chars and not rules.audience:
        text = _fit([*parts, f"Made for {audience}."], optional, rules)
    if rules.calm:
        text = text.replace("!", ".")
    budget = max(0, max_tokens if isinstance(max_tokens, int) else 0) * 4
    return text[:budget]


def _quoted(question: str) -> list[str]:
    quotes = "'\"\u2018\u2019\u201c\u201d"
    return [q.strip() for q in re.findall(f"[{quotes}]([^{quotes}]{{1,200}})[{quotes}]", question)]


def standin_judge(question: str, output: str) -> bool:
    """The stand-in's yes/no verdict on `output` for `question`; False when it cannot tell."""
    asked = (question if isinstance(question, str) else "")[:MAX_STANDIN_INPUT].lower()
    text = (output if isinstance(output, str) else "")[:MAX_STANDIN_INPUT]
    low = " ".join(text.lower().split())
    if "call to action" in asked or "call-to-action" in asked:
        return any(phrase in low for phrase in CTA_PHRASES)
    if "price" in asked:
        return re.search(r"[$€£]\s?\d", text) is not None
    if "shout" in asked or "capital" in asked or "caps" in asked:
        return text.count("!") <= 1 and not re.search(r"\b[A-Z]{4,}\b", text)
    between = re.search(r"between (\d{1,5}) and (\d{1,5}) char", asked)
    if between:
        low_n, high_n = sorted((int(between.group(1)), int(between.group(2))))
        return low_n <= len(text.strip()) <= high_n
    if "name" in asked:
        names = _quoted(question[:MAX_STANDIN_INPUT] if isinstance(question, str) else "")
        return bool(names) and all(" ".join(n.lower().split()) in low for n in names)
    return False
