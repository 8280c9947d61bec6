"""Writes data/ for search_ranking: 160 queries x 25 candidate documents x 10 features.

A hidden linear relevance score (plus noise) gives each document a grade 0-3 within its query.
Features come in raw units: some informative, one harmful (spam), some heavy-tailed counts, and
some pure noise. Queries q000-q059 are for training (features and grades public); q060-q159 are
the test queries (features public, grades private).
Deterministic (numpy's default_rng(seed)); rerun with `python generate.py`.
"""

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 7
TRAIN, TEST, DOCS = 60, 100, 25
FEATURES = ["bm25", "title_match", "pagerank", "clicks", "doc_length", "spam_score",
            "freshness_days", "anchor_hits", "url_depth", "font_size"]


def simulate_query(rng):
    n = DOCS
    topical = rng.standard_normal(n)  # how well the document matches the query
    quality = rng.standard_normal(n)  # how good the document is, query aside
    spam = rng.beta(1.5, 5.0, n)
    fresh = rng.exponential(200.0, n)
    features = {
        "bm25": 12.0 + 3.0 * rng.standard_normal()
        + 4.0 * (topical + 0.6 * rng.standard_normal(n)),
        "title_match": (topical + 0.8 * rng.standard_normal(n) > 0.7).astype(float),
        "pagerank": 1e-4 * np.exp(0.8 * quality + 0.7 * rng.standard_normal(n)),
        "clicks": np.floor(
            np.exp(3.0 + 1.2 * quality + 0.6 * topical + 1.0 * rng.standard_normal(n))
        ),
        "doc_length": np.floor(np.exp(6.5 + 0.8 * rng.standard_normal(n))),
        "spam_score": spam,
        "freshness_days": np.floor(fresh),
        "anchor_hits": np.floor(
            np.exp(1.0 + 0.5 * topical + 0.4 * quality + 0.8 * rng.standard_normal(n))
        ),
        "url_depth": rng.integers(1, 7, n).astype(float),
        "font_size": np.round(rng.normal(12.0, 2.0, n), 1),
    }
    latent = (1.0 * topical + 0.6 * quality - 2.5 * spam - 0.001 * fresh
              + 0.5 * rng.standard_normal(n))
    order = np.argsort(-latent)
    grades = np.zeros(n, dtype=int)
    grades[order[:2]] = 3
    grades[order[2:5]] = 2
    grades[order[5:10]] = 1
    return features, grades


def main():
    rng = np.random.default_rng(SEED)
    rows = []
    for q in range(TRAIN + TEST):
        features, grades = simulate_query(rng)
        doc_ids = rng.permutation(10_000)[:DOCS]
        for i in range(DOCS):
            qid, did = f"q{q:03d}", f"d{doc_ids[i]:04d}"
            values = [features[name][i] for name in FEATURES]
            rows.append((q < TRAIN, qid, did, values, int(grades[i])))
    public = HERE / "data" / "public"
    private = HERE / "data" / "private"
    public.mkdir(parents=True, exist_ok=True)
    private.mkdir(parents=True, exist_ok=True)
    with open(public / "train.csv", "w", newline="") as tr, \
            open(public / "test.csv", "w", newline="") as te, \
            open(private / "test_labels.csv", "w", newline="") as lab:
        train, test, truth = csv.writer(tr), csv.writer(te), csv.writer(lab)
        train.writerow(["query", "doc", *FEATURES, "grade"])
        test.writerow(["query", "doc", *FEATURES])
        truth.writerow(["query", "doc", "grade"])
        for is_train, qid, did, values, grade in rows:
            cells = [f"{v:.6g}" for v in values]
            if is_train:
                train.writerow([qid, did, *cells, grade])
            else:
                test.writerow([qid, did, *cells])
                truth.writerow([qid, did, grade])


if __name__ == "__main__":
    main()
