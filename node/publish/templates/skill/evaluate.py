"""The fixed evaluator: yes/no checks on every output; one asks the model (swarm_model.judge).

Report: score = share of passing (case, sample, check) triples; items = check -> passes
everywhere; details "case:NN" = one "1"/"0" per check in CHECKS order (the problem.toml
checklist order), samples separated by spaces (the noise gate pairs cases on them), "out:NN" =
the start of the case's first output.
"""

import json

import swarm_model

CHECKS = ["names_product", "states_price", "short", "no_shouting"]
CALM = "Is this text calm, with no shouting (no words in capitals, at most one exclamation mark)?"


def load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def checks_for(text, case, rules):
    low = " ".join(text.lower().split())
    return {
        "names_product": case["name"].lower() in low,
        "states_price": f"${case['price']}" in text,
        "short": 0 < len(text.strip()) <= rules["max_chars"],
        "no_shouting": bool(swarm_model.judge(CALM, text)),
    }


def evaluate(output, public_dir, private_dir):
    cases = load(f"{public_dir}/cases.json")
    rules = load(f"{private_dir}/rules.json")
    shape = isinstance(output, list) and len(output) == len(cases) and all(
        isinstance(replies, list) and replies and all(isinstance(r, str) for r in replies)
        for replies in output)
    if not shape:
        return {"score": 0.0, "valid": False, "details": {"error": "one list of str per case"}}
    passed, total, details, outputs = 0, 0, {}, {}
    for number, (replies, case) in enumerate(zip(output, cases, strict=True), 1):
        verdicts = []
        for text in replies:
            results = checks_for(text, case, rules)
            verdicts.append("".join("1" if results[name] else "0" for name in CHECKS))
            passed += sum(results.values())
            total += len(CHECKS)
        details[f"case:{number:02d}"] = " ".join(verdicts)
        outputs[f"out:{number:02d}"] = replies[0][:200]
    verdicts = [v for key, value in details.items() if key.startswith("case:")
                for v in value.split()]
    items = {name: all(v[i] == "1" for v in verdicts) for i, name in enumerate(CHECKS)}
    # Last: an outcome keeps 32 details, and the verdicts matter most (the noise gate).
    details.update(dict(list(outputs.items())[: max(0, 32 - len(details))]))
    return {"score": passed / total, "items": items, "details": details}
