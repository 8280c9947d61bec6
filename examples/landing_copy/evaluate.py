"""Scores landing_copy: five yes/no checks on each of the ten blurbs (fixed; never mutated).

score   = fraction of (product, check) pairs that pass.
items   = check -> True when it passes for every product.
details = check -> pass rate over the products.
"""

import json
import re

CHECKS = [
    "names_product",
    "mentions_price",
    "has_call_to_action",
    "right_length",
    "no_shouting",
]


def load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def normalise(text):
    return " ".join(text.lower().split())


def checks_for(text, product, rules):
    low = normalise(text)
    price = re.escape(product["price"])
    words = re.findall(r"[A-Za-z]+", text)
    shouted = [w for w in words if len(w) >= rules["shout_letters"] and w.isupper()]
    return {
        "names_product": normalise(product["name"]) in low,
        "mentions_price": re.search(rf"\$\s?{price}(?![0-9])", text) is not None,
        "has_call_to_action": any(phrase in low for phrase in rules["cta_phrases"]),
        "right_length": rules["min_chars"] <= len(text.strip()) <= rules["max_chars"],
        "no_shouting": text.count("!") <= rules["max_exclamations"] and not shouted,
    }


def evaluate(output, public_dir, private_dir):
    products = load(f"{public_dir}/products.json")
    rules = load(f"{private_dir}/rules.json")
    if not isinstance(output, list) or len(output) != len(products):
        return {"score": 0.0, "valid": False, "details": {"error": "expected a list of 10 str"}}
    if not all(isinstance(text, str) for text in output):
        return {"score": 0.0, "valid": False, "details": {"error": "every blurb must be a str"}}
    passed = {name: 0 for name in CHECKS}
    for text, product in zip(output, products, strict=True):
        for name, ok in checks_for(text, product, rules).items():
            passed[name] += int(ok)
    total = len(products) * len(CHECKS)
    return {
        "score": sum(passed.values()) / total,
        "items": {name: passed[name] == len(products) for name in CHECKS},
        "details": {name: passed[name] / len(products) for name in CHECKS},
    }
