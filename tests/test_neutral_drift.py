"""Neutral drift's structure rule (node/neutral_drift.py): numbers may change, code may not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from node.neutral_drift import same_structure

NUMBERS = st.one_of(st.integers(-10**9, 10**9),
                    st.floats(allow_nan=False, allow_infinity=False))


@given(NUMBERS, NUMBERS, NUMBERS, NUMBERS)
def test_numbers_alone_keep_the_structure(a: float, b: float, c: float, d: float) -> None:
    def source(x: float, y: float) -> dict[str, str]:
        return {"strategy.py": f"A = {x!r}\nB = [{y!r}, 2]  # weights\n\ndef f(v):\n"
                f"    return A * v - {abs(y)!r}\n"}

    assert same_structure(source(a, b), source(c, d))


@given(st.text(max_size=40))
def test_a_code_change_is_never_the_same_structure(extra: str) -> None:
    base = {"strategy.py": "A = 1.0\n"}
    changed = {"strategy.py": "A = 1.0\n" + f"B = {extra!r}\n"}
    assert not same_structure(base, changed)
    assert not same_structure(base, {"other.py": "A = 1.0\n"})
