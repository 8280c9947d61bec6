"""Scores search_ranking: mean NDCG@10 over the test queries, against their private grades.

The output must map every test query to a list of distinct doc ids of that query (best first);
a missing query, an unknown or repeated doc id, or any other shape is invalid. Gain 2^grade - 1,
discount 1 / log2(rank + 1).
"""

import csv
import math

K = 10


def load_grades(path):
    grades = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            grades.setdefault(row["query"], {})[row["doc"]] = int(row["grade"])
    return grades


def dcg(gains):
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains[:K]))


def invalid(reason):
    return {"score": 0.0, "valid": False, "details": {"error": reason[:80]}}


def evaluate(output, public_dir, private_dir):
    grades = load_grades(f"{private_dir}/test_labels.csv")
    if not isinstance(output, dict):
        return invalid("output must be a dict {query: [doc ids]}")
    missing = [q for q in grades if q not in output]
    if missing:
        return invalid(f"missing queries, e.g. {missing[0]}")
    ndcgs = []
    for query, docs in grades.items():
        ranking = output[query]
        if not isinstance(ranking, list) or not all(isinstance(d, str) for d in ranking):
            return invalid(f"{query}: expected a list of doc ids")
        if len(set(ranking)) != len(ranking) or any(d not in docs for d in ranking):
            return invalid(f"{query}: repeated or unknown doc ids")
        ideal = dcg(sorted((2**g - 1 for g in docs.values()), reverse=True))
        ndcgs.append(dcg([2 ** docs[d] - 1 for d in ranking]) / ideal)
    score = sum(ndcgs) / len(ndcgs)
    return {
        "score": score,
        "details": {
            "ndcg_at_10": round(score, 4),
            "queries": len(ndcgs),
            "worst_query": round(min(ndcgs), 4),
            "perfect_queries": sum(n > 0.9999 for n in ndcgs),
        },
    }
