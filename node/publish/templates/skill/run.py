"""The fixed runner: gives SKILL.md to the model as its system prompt and each case as the user
message; returns, per case, the model's replies (one per sample)."""

import json

import swarm_model

MAX_TOKENS = 200


def load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def message(case, sample):
    lines = [f"{key}: {value}" for key, value in case.items()]
    if sample:  # a repeated sample is another request, not a cached copy of the first
        lines.append(f"sample: {sample + 1}")
    return "\n".join(lines)


def run(public_dir):
    context = load("/runner/swarm_text.json")
    with open(f"{context['strategy_dir']}/SKILL.md", encoding="utf-8") as handle:
        skill = handle.read()
    return [
        [swarm_model.complete(skill, message(case, sample), MAX_TOKENS)
         for sample in range(context["samples"])]
        for case in load(f"{public_dir}/cases.json")
    ]
