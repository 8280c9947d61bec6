"""The strict unified-diff applier and the canonical diff it round-trips with."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.mutators import PatchError, apply_patch, make_diff

STRATEGY = textwrap.dedent(
    '''\
    """Classify points by a weighted vote of simple features."""

    WEIGHTS = [0.5, 1.5, -0.25, 0.8]
    THRESHOLD = 0.5


    def features(point):
        x, y = point
        return [x, y, x * y, x - y]


    def solve(inputs):
        outputs = []
        for point in inputs:
            score = sum(w * f for w, f in zip(WEIGHTS, features(point)))
            outputs.append(1 if score > THRESHOLD else 0)
        return outputs
    '''
)
FILES = {"strategy.py": STRATEGY}
MUTABLE = ["strategy.py"]


def test_patch_applies_several_hunks_in_order() -> None:
    diff = (
        "--- a/strategy.py\n+++ b/strategy.py\n"
        "@@ -3,2 +3,2 @@\n-WEIGHTS = [0.5, 1.5, -0.25, 0.8]\n+WEIGHTS = [0.5, 1.5, 0.0, 0.8]\n"
        " THRESHOLD = 0.5\n"
        "@@ -16,3 +16,3 @@\n         outputs.append(1 if score > THRESHOLD else 0)\n"
        "-    return outputs\n+    return list(outputs)\n"
    )
    new = apply_patch(diff, FILES, MUTABLE)["strategy.py"]
    assert "0.0, 0.8]" in new and "return list(outputs)" in new
    assert new.endswith("\n")


def test_patch_without_file_headers_applies_to_the_only_mutable_file() -> None:
    diff = "@@ -4 +4 @@\n-THRESHOLD = 0.5\n+THRESHOLD = 0.4\n"
    assert "THRESHOLD = 0.4\n" in apply_patch(diff, FILES, MUTABLE)["strategy.py"]
    with pytest.raises(PatchError, match="before any"):
        apply_patch(diff, {**FILES, "helpers.py": ""}, [*MUTABLE, "helpers.py"])


@pytest.mark.parametrize(
    ("diff", "message"),
    [
        ("just prose", "no hunks"),
        ("--- a/strategy.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n", "deletes 'strategy.py'"),
        ("--- a/strategy.py\n+++ b/solver.py\n@@ -1 +1 @@\n-x\n+y\n", "renames"),
        (
            "--- a/strategy.py\n+++ b/strategy.py\n@@ -1 +1 @@\n-nope\n+y\n",
            "'nope' is not in the file",
        ),
        ("--- a/strategy.py\n+++ b/strategy.py\n@@ -4 +4 @@\n?THRESHOLD\n", "not a context"),
        (
            "--- a/strategy.py\n+++ b/strategy.py\n@@ -4,2 +4,2 @@\n-THRESHOLD = 0.5\n x = 1\n+y\n",
            r"expected 'x = 1' at line 5, found ''",
        ),
    ],
)
def test_patch_errors_are_precise(diff: str, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        apply_patch(diff, FILES, MUTABLE)


def test_patch_refuses_to_apply_far_from_its_line_when_ambiguous() -> None:
    text = "".join(f"# block {n}\nvalue = 1\n" + "pad\n" * 50 for n in range(3))
    diff = "--- a/s.py\n+++ b/s.py\n@@ -1000 +1000 @@\n-value = 1\n+value = 2\n"
    with pytest.raises(PatchError, match="matches 3 places"):
        apply_patch(diff, {"s.py": text}, ["s.py"])
    near = diff.replace("-1000 +1000", "-55 +55")  # the second block is at line 55
    assert apply_patch(near, {"s.py": text}, ["s.py"])["s.py"].count("value = 2") == 1


# Any characters but line breaks, including form feeds and other separators str.splitlines uses.
line_text = st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    old=st.lists(line_text, max_size=30),
    edits=st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 2), st.lists(line_text, max_size=3)),
        max_size=4,
    ),
)
def test_make_diff_round_trips_through_apply_patch(
    old: list[str], edits: list[tuple[int, int, list[str]]]
) -> None:
    new = list(old)
    for at, remove, insert in edits:
        at = min(at, len(new))
        new[at : at + remove] = insert
    before = "".join(f"{line}\n" for line in old)
    after = "".join(f"{line}\n" for line in new)
    diff = make_diff({"s.py": before}, {"s.py": after})
    assert (diff == "") == (before == after)
    if diff:
        assert apply_patch(diff, {"s.py": before}, ["s.py"]) == {"s.py": after}
