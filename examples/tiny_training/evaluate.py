"""Scores tiny_training: mean cross-entropy of the returned network on the private validation set.

The output must hold the preprocessing (mean, scale: 6 numbers each, scale nonzero), whether
squares are appended (squares: bool), and the parameters w1 (inputs x hidden), b1 (hidden),
w2 (hidden x 3), b2 (3), all finite. Lower is better; a wrong shape is invalid.
"""

import numpy as np

RAW = 6
CLASSES = 3
MAX_HIDDEN = 512
WORST = 99.0


def invalid(reason):
    return {"score": WORST, "valid": False, "details": {"error": reason[:80]}}


def numeric(value):
    """True for a number (not a bool, not a numeric string) or a list of such, nested."""
    if isinstance(value, list):
        return all(numeric(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def matrix(value, rows, cols=None):
    """`value` as a finite float array of the given shape, or None."""
    if not numeric(value):
        return None
    try:
        array = np.array(value, dtype=float)
    except (TypeError, ValueError, OverflowError):
        return None
    shape = (rows,) if cols is None else (rows, cols)
    if array.shape != shape or not np.all(np.isfinite(array)):
        return None
    return array


def evaluate(output, public_dir, private_dir):
    if not isinstance(output, dict) or not isinstance(output.get("squares"), bool):
        return invalid("output must be a dict with squares: bool")
    b1 = output.get("b1")
    hidden = len(b1) if isinstance(b1, list) else 0
    if not 1 <= hidden <= MAX_HIDDEN:
        return invalid(f"b1 must be a list of 1..{MAX_HIDDEN} numbers")
    n_in = RAW * 2 if output["squares"] else RAW
    mean, scale = matrix(output.get("mean"), RAW), matrix(output.get("scale"), RAW)
    w1, b1 = matrix(output.get("w1"), n_in, hidden), matrix(b1, hidden)
    w2, b2 = matrix(output.get("w2"), hidden, CLASSES), matrix(output.get("b2"), CLASSES)
    if any(part is None for part in (mean, scale, w1, b1, w2, b2)):
        return invalid("a parameter has the wrong shape or a non-finite value")
    if np.any(scale == 0):
        return invalid("scale must be nonzero")
    data = np.loadtxt(f"{private_dir}/valid.csv", delimiter=",", skiprows=1)
    x, y = data[:, :-1], data[:, -1].astype(int)
    with np.errstate(all="ignore"):
        z = (x - mean) / scale
        if output["squares"]:
            z = np.hstack([z, z**2])
        logits = np.tanh(z @ w1 + b1) @ w2 + b2
        top = logits.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        losses = log_norm - logits[np.arange(len(y)), y]
    loss = float(np.mean(losses))
    if not np.isfinite(loss):
        return invalid("non-finite loss")
    accuracy = float(np.mean(logits.argmax(axis=1) == y))
    return {
        "score": loss,
        "details": {"cross_entropy": round(loss, 5), "accuracy": round(accuracy, 4),
                    "hidden": hidden, "rows": len(y)},
    }
