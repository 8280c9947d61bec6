"""A keyword spam filter: a message is spam when its weighted keyword score passes a threshold.

data/public/test.csv holds the messages to label (id, text); data/public/train.csv holds 1,000
other messages with their labels (id, text, spam 0/1), which a strategy may learn from. solve()
returns one label per test message, in file order (1 = spam); the evaluator scores the balanced
accuracy against the test messages' hidden labels.
"""

import csv
import math

KEYWORDS = [  # swarm: fixed
    "free", "winner", "offer", "click", "money", "urgent", "prize", "meeting", "project",
    "thanks", "report", "lunch", "today", "please", "new", "time", "week", "people",
]
# How much each keyword's count adds to the spam score, in KEYWORDS' order: a first guess.
WEIGHTS = [
    1.0,
    1.0,
    1.0,
    1.0,
    1.0,
    1.0,
    1.0,
    0.5,
    -0.5,
    0.5,
    -0.5,
    -0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
]
LOG_COUNTS = False  # use log(1 + count) of each keyword instead of its raw count
THRESHOLD = 2.0  # a message is spam when its score exceeds this


def keyword_counts(text):
    counts = dict.fromkeys(KEYWORDS, 0)  # swarm: fixed
    for word in text.lower().split():
        word = word.strip(".,!?")  # swarm: fixed
        if word in counts:
            counts[word] += 1  # swarm: fixed
    return counts


def spam_score(text):
    counts = keyword_counts(text)
    score = 0.0  # swarm: fixed
    for keyword, weight in zip(KEYWORDS, WEIGHTS, strict=True):
        value = math.log1p(counts[keyword]) if LOG_COUNTS else counts[keyword]
        score += weight * value
    return score


def solve(public_dir):
    with open(f"{public_dir}/test.csv", newline="") as handle:
        messages = list(csv.DictReader(handle))
    return [1 if spam_score(row["text"]) > THRESHOLD else 0 for row in messages]  # swarm: fixed
