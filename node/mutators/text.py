"""Offline operators on a text strategy (a SKILL.md): delete, move or duplicate one sentence or
bullet, or insert one from the package's phrase bank; one described change per proposal.

A text is read as units: each bullet line ("- ", "* ", "1. ") is one unit, each sentence of a
prose line is one; headings, blank lines and fenced code stay as they are. The phrase bank is
`phrases.txt` or `data/public/phrases.txt` in the package (one phrase a line, `#` comments),
bounded in count and length. The operators never propose a text they proposed before for the
same problem (kept per mutator, bounded), so with a deterministic model no evaluation is spent
twice on one text.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass

from node.mutators.base import MutationContext, MutationFailed, Proposal, applied_patterns
from node.mutators.patch import make_diff
from research_dag import Change, Operation

__all__ = ["PHRASE_FILES", "TEXT_KINDS", "TextOperators", "phrase_bank", "text_units"]

PHRASE_FILES = ("phrases.txt", "data/public/phrases.txt")
MAX_PHRASES = 256
MAX_PHRASE = 300
MAX_UNITS = 512  # units of one text the operators look at
MAX_TRIED = 4096  # texts remembered as proposed
MAX_DRAWS = 64
# Relative chance of each kind (times the context's kind weight): a phrase bank is where new
# instructions come from, so inserting is drawn most; duplicating rarely helps.
TEXT_KINDS = {"insert_phrase": 3.0, "delete_sentence": 2.0, "move_sentence": 1.0,
              "duplicate_sentence": 0.5}
OPERATION: dict[str, Operation] = {
    "insert_phrase": "insert", "delete_sentence": "prune", "move_sentence": "reorder",
    "duplicate_sentence": "insert",
}
_BULLET = re.compile(r"^(\s*)([-*+]|\d{1,3}[.)])\s+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)")


@dataclass(frozen=True)
class Unit:
    """One sentence or bullet: its line, its span within the line, and whether it is a bullet."""

    line: int
    start: int
    end: int
    bullet: bool


def text_units(text: str) -> list[Unit]:
    """The sentences and bullets of `text`, in order (at most MAX_UNITS)."""
    units: list[Unit] = []
    fenced = False
    for number, line in enumerate(text.split("\n")):
        stripped = line.strip()
        if stripped.startswith("```"):
            fenced = not fenced
            continue
        if fenced or not stripped or stripped.startswith("#") or stripped.startswith("|"):
            continue
        if _BULLET.match(line):
            units.append(Unit(number, 0, len(line), True))
        else:
            start = len(line) - len(line.lstrip())
            for part in _SENTENCE.split(line[start:]):
                units.append(Unit(number, start, start + len(part), False))
                start += len(part)
                while start < len(line) and line[start].isspace():
                    start += 1
        if len(units) >= MAX_UNITS:
            return units[:MAX_UNITS]
    return units


def phrase_bank(files: dict[str, bytes]) -> list[str]:
    """The package's phrases: bullet markers removed, comments and blanks skipped, bounded."""
    phrases: list[str] = []
    for name in PHRASE_FILES:
        content = files.get(name)
        if content is None:
            continue
        for raw in content.decode("utf-8", errors="replace").splitlines()[: 4 * MAX_PHRASES]:
            line = _BULLET.sub("", raw.strip())
            line = " ".join(line.split())
            if line and not raw.lstrip().startswith("#") and len(line) <= MAX_PHRASE:
                phrases.append(line)
    return list(dict.fromkeys(phrases))[:MAX_PHRASES]


def _unit_text(lines: list[str], unit: Unit) -> str:
    return lines[unit.line][unit.start : unit.end]


def _without(lines: list[str], unit: Unit) -> list[str]:
    """`lines` with `unit` taken out (a bullet's whole line)."""
    out = list(lines)
    if unit.bullet:
        del out[unit.line]
        return out
    line = out[unit.line]
    rest = (line[: unit.start].rstrip() + " " + line[unit.end :].lstrip()).strip()
    indent = line[: len(line) - len(line.lstrip())]
    if rest:
        out[unit.line] = indent + rest
    else:
        del out[unit.line]
    return out


def _with(lines: list[str], units: list[Unit], position: int, sentence: str) -> list[str]:
    """`lines` with `sentence` placed before units[position] (after the last at the end),
    as a bullet among bullets, as a sentence within prose."""
    out = list(lines)
    anchor = units[min(position, len(units) - 1)] if units else None
    if anchor is None:
        return [*out, sentence]
    after = position >= len(units)
    if anchor.bullet:
        marker = _BULLET.match(lines[anchor.line])
        prefix = marker.group(0) if marker else "- "
        prefix = re.sub(r"\d{1,3}", "1", prefix)
        out.insert(anchor.line + (1 if after else 0), prefix + _BULLET.sub("", sentence))
        return out
    line = out[anchor.line]
    cut = anchor.end if after else anchor.start
    head, tail = line[:cut].rstrip(), line[cut:].lstrip()
    out[anchor.line] = " ".join(part for part in (head, sentence, tail) if part)
    return out


@dataclass(frozen=True)
class _Edit:
    kind: str
    text: str
    site: str
    description: str


class TextOperators:
    """Draws one edit of a text strategy; remembers the texts it proposed (per problem)."""

    def __init__(self) -> None:
        self._tried: OrderedDict[str, None] = OrderedDict()

    def _fresh(self, problem_id: str, path: str, text: str) -> bool:
        key = hashlib.sha256(f"{problem_id}\0{path}\0{text}".encode()).hexdigest()
        if key in self._tried:
            return False
        self._tried[key] = None
        while len(self._tried) > MAX_TRIED:
            self._tried.popitem(last=False)
        return True

    def _draw(self, kind: str, path: str, text: str, phrases: list[str],
              context: MutationContext) -> _Edit | None:
        rng = context.rng
        lines = text.split("\n")
        units = text_units(text)
        if kind == "insert_phrase":
            fresh = [p for p in phrases if p.lower() not in text.lower()]
            if not fresh:
                return None
            phrase = rng.choice(fresh)
            position = rng.randrange(len(units) + 1)
            edited = _with(lines, units, position, phrase)
            return _Edit(kind, "\n".join(edited), f"{path}:unit[{position}]",
                         f"insert {phrase!r:.120} at unit {position}")
        if not units:
            return None
        index = rng.randrange(len(units))
        unit = units[index]
        said = _unit_text(lines, unit).strip()
        if kind == "delete_sentence":
            edited = _without(lines, unit)
            return _Edit(kind, "\n".join(edited), f"{path}:unit[{index}]",
                         f"delete {said!r:.120}")
        if kind == "duplicate_sentence":
            edited = _with(lines, units, index + 1, _BULLET.sub("", said))
            return _Edit(kind, "\n".join(edited), f"{path}:unit[{index}]",
                         f"duplicate {said!r:.120}")
        if len(units) < 2:
            return None
        target = rng.choice([i for i in range(len(units) + 1) if i not in (index, index + 1)])
        removed = _without(lines, unit)
        shifted = text_units("\n".join(removed))
        position = target if target < index else target - 1
        edited = _with(removed, shifted, position, _BULLET.sub("", said))
        return _Edit(kind, "\n".join(edited), f"{path}:unit[{index}]",
                     f"move {said!r:.120} from unit {index} to {target}")

    def propose(self, context: MutationContext) -> Proposal:
        """One edit of the first mutable text file; MutationFailed when none is left."""
        problem = context.problem
        if context.plan is not None:
            raise MutationFailed("the text operators make no planned changes")
        path = problem.mutable[0]
        text = context.best_files.get(path)
        if text is None:
            raise MutationFailed(f"the best strategy has no {path}")
        phrases = phrase_bank(problem.files)
        kinds = [kind for kind in TEXT_KINDS if kind != "insert_phrase" or phrases]
        weights = [TEXT_KINDS[kind] * max(0.0, context.kind_weights.get(kind, 1.0))
                   for kind in kinds]
        if not any(weights):
            weights = [1.0] * len(kinds)
        for _ in range(MAX_DRAWS):
            kind = context.rng.choices(kinds, weights)[0]
            edit = self._draw(kind, path, text, phrases, context)
            if edit is None or edit.text == text or not self._fresh(problem.id, path, edit.text):
                continue
            files = {**context.best_files, path: edit.text}
            changes = (Change(operation=OPERATION[kind], affordance="text_section",
                              site=edit.site[:200], note=kind),)
            return Proposal(
                files=files,
                diff=make_diff(context.best_files, files),
                mutation_kind=kind,
                description=edit.description,
                hypothesis=f"one instruction changed ({kind.replace('_', ' ')}): the model's "
                           "outputs may pass more checks",
                changes=changes,
                applied=applied_patterns(context, changes),
            )
        raise MutationFailed(f"no untried edit of {path} left to draw", retryable=False)
