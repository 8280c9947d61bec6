"""Writes data/ for spam_filter: 3,000 short synthetic messages (plain ASCII), 40% spam.

Each message draws its length, then its words: filler from a neutral vocabulary, plus the
eighteen keywords the strategy weighs at rates that depend on the class. Seven keywords are
spam words (a spam message often repeats them), five are everyday work words (more common in
ham), six are noise (the same rate in both classes, so they only track a message's length; ham
runs longer). Messages m0000-m0999 are public with their labels (training); m1000-m2999 are the
test messages, whose text is public and whose labels stay private.
Deterministic (numpy's default_rng(seed)); rerun with `python generate.py`.
"""

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 4242
TRAIN, TEST = 1000, 2000
SPAM_SHARE = 0.4
# keyword: (rate per word in spam, rate per word in ham)
KEYWORDS = {
    "free": (0.030, 0.004), "winner": (0.012, 0.001), "offer": (0.020, 0.004),
    "click": (0.022, 0.003), "money": (0.015, 0.004), "urgent": (0.012, 0.003),
    "prize": (0.010, 0.001),
    "meeting": (0.003, 0.018), "project": (0.003, 0.016), "thanks": (0.006, 0.020),
    "report": (0.002, 0.012), "lunch": (0.002, 0.010),
    "today": (0.015, 0.015), "please": (0.018, 0.018), "new": (0.015, 0.015),
    "time": (0.012, 0.012), "week": (0.010, 0.010), "people": (0.010, 0.010),
}
FILLER_WORDS = (
    "a about after all also and any are as at be because been before but by can come could "
    "day did do even first for from get give go good had has have he her here him his how if "
    "in into is it its just know like look make me more most my no not now of on one only or "
    "other our out over say see she so some take than that the their them then there these "
    "they think this to two up us use very want was way we well what when which who will with "
    "work would year you your able back call case find great group hand help keep last leave "
    "life long made many might move much need never next number part place point right room "
    "same seem set show small start state still tell thing three turn under where while world"
)
FILLER = FILLER_WORDS.split()
STOPS = ".?!"
STOP_ODDS = {True: [0.5, 0.2, 0.3], False: [0.85, 0.12, 0.03]}  # spam shouts more


def message(rng, spam):
    """One message as text: lowercase words, a few sentences, occasional capitals."""
    length = int(rng.integers(12, 40) if spam else rng.integers(25, 80))
    rates = np.array([spam_rate if spam else ham_rate for spam_rate, ham_rate in KEYWORDS.values()])
    words = list(rng.choice(FILLER, size=length))
    names = list(KEYWORDS)
    for index, count in enumerate(rng.poisson(rates * length)):
        burst = spam and index < 7 and rng.random() < 0.3  # spam repeats its pitch
        for _ in range(count * (3 if burst else 1)):
            words.insert(int(rng.integers(0, len(words) + 1)), names[index])
    sentences, start = [], 0
    while start < len(words):
        end = start + int(rng.integers(5, 14))
        sentence = " ".join(words[start:end])
        stop = STOPS[int(rng.choice(3, p=STOP_ODDS[spam]))]
        sentences.append(sentence[0].upper() + sentence[1:] + stop)
        start = end
    return " ".join(sentences)


def main():
    rng = np.random.default_rng(SEED)
    public = HERE / "data" / "public"
    private = HERE / "data" / "private"
    public.mkdir(parents=True, exist_ok=True)
    private.mkdir(parents=True, exist_ok=True)
    with open(public / "train.csv", "w", newline="") as tr, \
            open(public / "test.csv", "w", newline="") as te, \
            open(private / "test_labels.csv", "w", newline="") as lab:
        train, test, labels = csv.writer(tr), csv.writer(te), csv.writer(lab)
        train.writerow(["id", "text", "spam"])
        test.writerow(["id", "text"])
        labels.writerow(["id", "spam"])
        for i in range(TRAIN + TEST):
            spam = bool(rng.random() < SPAM_SHARE)
            text, ident = message(rng, spam), f"m{i:04d}"
            if i < TRAIN:
                train.writerow([ident, text, int(spam)])
            else:
                test.writerow([ident, text])
                labels.writerow([ident, int(spam)])


if __name__ == "__main__":
    main()
