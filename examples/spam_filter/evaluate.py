"""Scores spam_filter: the balanced accuracy of the strategy's labels against the private ones.

The output must be a list with one label per test message, in the order of data/public/test.csv:
1 (or True) for spam, 0 (or False) for ham; anything else is invalid. The balanced accuracy is
the mean of the recall on spam and the recall on ham, so any constant answer scores 0.5.
"""

import csv


def load_labels(path):
    with open(path, newline="") as handle:
        return [row["spam"] == "1" for row in csv.DictReader(handle)]


def invalid(reason):
    return {"score": 0.0, "valid": False, "details": {"error": reason[:80]}}


def evaluate(output, public_dir, private_dir):
    truth = load_labels(f"{private_dir}/test_labels.csv")
    if not isinstance(output, list) or len(output) != len(truth):
        return invalid(f"output must be a list of {len(truth)} labels (0 or 1)")
    if not all(type(label) in (int, bool) and label in (0, 1) for label in output):
        return invalid("every label must be 0 or 1")
    flagged = [label == 1 for label in output]
    caught = sum(f and t for f, t in zip(flagged, truth, strict=True))
    false_alarms = sum(f and not t for f, t in zip(flagged, truth, strict=True))
    spam = sum(truth)
    ham = len(truth) - spam
    spam_recall = caught / spam
    ham_recall = (ham - false_alarms) / ham
    score = (spam_recall + ham_recall) / 2
    precision = caught / max(caught + false_alarms, 1)
    return {
        "score": score,
        "details": {
            "balanced_accuracy": round(score, 4),
            "spam_recall": round(spam_recall, 4),
            "ham_recall": round(ham_recall, 4),
            "precision": round(precision, 4),
            "flagged": caught + false_alarms,
            "messages": len(truth),
        },
    }
