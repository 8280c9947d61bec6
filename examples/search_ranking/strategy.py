"""Ranks candidate documents for each test query by a weighted sum of their features.

data/public/test.csv holds the test queries' documents (query, doc, ten features);
data/public/train.csv holds 60 other queries with the same features plus graded relevance
(0-3), which a strategy may learn from. solve() returns {query: [doc ids, best first]}; the
evaluator scores NDCG@10 against the test queries' hidden grades.
"""

import csv
import math

FEATURES = [  # swarm: fixed
    "bm25", "title_match", "pagerank", "clicks", "doc_length",
    "spam_score", "freshness_days", "anchor_hits", "url_depth", "font_size",
]
WEIGHTS = {
    "bm25": 1.0,
    "title_match": 1.0,
    "pagerank": 1.0,
    "clicks": 1.0,
    "doc_length": 1.0,
    "spam_score": 1.0,
    "freshness_days": 1.0,
    "anchor_hits": 1.0,
    "url_depth": 1.0,
    "font_size": 1.0,
}
NORMALIZE = False  # z-score each feature within its query before weighting
LOG_COUNTS = False  # use log(1 + x) for the count-like features below
COUNT_FEATURES = ["clicks", "doc_length", "anchor_hits", "freshness_days"]


def read_queries(path):
    queries = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            values = {name: float(row[name]) for name in FEATURES}
            queries.setdefault(row["query"], []).append((row["doc"], values))  # swarm: fixed
    return queries


def transform(docs):
    """The feature columns of one query after the optional log and normalisation."""
    columns = {}
    for name in FEATURES:
        column = [values[name] for _, values in docs]
        if LOG_COUNTS and name in COUNT_FEATURES:
            column = [math.log1p(max(v, 0.0)) for v in column]  # swarm: fixed
        if NORMALIZE:
            mean = sum(column) / len(column)
            spread = math.sqrt(sum((v - mean) ** 2 for v in column) / len(column))  # swarm: fixed
            column = [(v - mean) / spread if spread > 0 else 0.0 for v in column]  # swarm: fixed
        columns[name] = column
    return columns


def rank(docs):
    columns = transform(docs)
    scores = [sum(WEIGHTS.get(name, 0.0) * columns[name][i] for name in FEATURES)  # swarm: fixed
              for i in range(len(docs))]
    order = sorted(range(len(docs)), key=lambda i: (-scores[i], docs[i][0]))  # swarm: fixed
    return [docs[i][0] for i in order]


def solve(public_dir):
    queries = read_queries(f"{public_dir}/test.csv")
    return {query: rank(docs) for query, docs in queries.items()}
