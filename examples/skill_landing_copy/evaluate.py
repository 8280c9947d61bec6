"""Scores skill_landing_copy: five yes/no checks on each product's copy (fixed; never mutated).

Four checks are plain code; whether the copy ends with a call to action is asked of the model
(swarm_model.judge), as a checklist item that needs judgement would be.

score   = fraction of (product, sample, check) triples that pass.
items   = check -> True when it passes for every product and sample.
details = "case:NN" -> the product's verdicts, one character per check in CHECKS order
          ("1" pass, "0" fail), samples separated by spaces (the noise gate pairs cases on
          them; `swarm eval` shows them); "out:NN" -> the start of the product's first copy;
          check -> pass rate.
"""

import json
import re

import swarm_model

CHECKS = ["names_product", "states_price", "has_call_to_action", "right_length", "no_shouting"]
CTA_QUESTION = (
    "Does this landing-page copy end with a call to action that tells the reader what to do "
    "next (for example 'order yours', 'buy now', 'try it')?"
)


def load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def normalise(text):
    return " ".join(text.lower().split())


def checks_for(text, product, rules):
    words = re.findall(r"[A-Za-z]+", text)
    shouted = [word for word in words if len(word) >= rules["shout_letters"] and word.isupper()]
    price = re.escape(product["price"])
    return {
        "names_product": normalise(product["name"]) in normalise(text),
        "states_price": re.search(rf"\$\s?{price}(?![0-9])", text) is not None,
        "has_call_to_action": bool(swarm_model.judge(CTA_QUESTION, text)),
        "right_length": rules["min_chars"] <= len(text.strip()) <= rules["max_chars"],
        "no_shouting": text.count("!") <= rules["max_exclamations"] and not shouted,
    }


def invalid(why):
    return {"score": 0.0, "valid": False, "details": {"error": why}}


def evaluate(output, public_dir, private_dir):
    products = load(f"{public_dir}/products.json")
    rules = load(f"{private_dir}/rules.json")
    if not isinstance(output, list) or len(output) != len(products):
        return invalid(f"expected a list of {len(products)} lists of copies")
    samples = None
    for copies in output:
        if not isinstance(copies, list) or not copies or not all(isinstance(c, str) for c in copies):
            return invalid("every product needs a non-empty list of str copies")
        if samples not in (None, len(copies)):
            return invalid("every product needs the same number of samples")
        samples = len(copies)
    passed = {name: 0 for name in CHECKS}
    details, outputs = {}, {}
    for index, (copies, product) in enumerate(zip(output, products, strict=True)):
        verdicts = []
        for text in copies:
            results = checks_for(text, product, rules)
            verdicts.append("".join("1" if results[name] else "0" for name in CHECKS))
            for name in CHECKS:
                passed[name] += int(results[name])
        details[f"case:{index + 1:02d}"] = " ".join(verdicts)
        outputs[f"out:{index + 1:02d}"] = copies[0][:200]  # what a mutator is shown
    runs = len(products) * samples
    details.update({name: passed[name] / runs for name in CHECKS})
    # Last: an outcome keeps 32 details, and the verdicts matter most (the noise gate).
    details.update(dict(list(outputs.items())[: max(0, 32 - len(details))]))
    return {
        "score": sum(passed.values()) / (runs * len(CHECKS)),
        "items": {name: passed[name] == runs for name in CHECKS},
        "details": details,
    }
