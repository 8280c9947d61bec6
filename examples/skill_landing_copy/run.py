"""The fixed runner of skill_landing_copy: applies the skill (SKILL.md) to every product.

Phase 1 of an evaluation runs `run(public_dir)`: the skill is the system prompt, each product's
facts are the user message, and the model's reply is the product's copy. The runner is fixed
(never mutated); only SKILL.md is the strategy.
"""

import json

import swarm_model

MAX_TOKENS = 200  # a hero blurb is short; the model may stop earlier


def load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def facts(product, sample):
    lines = [f"{key}: {product[key]}" for key in ("name", "price", "audience", "benefit", "story")]
    if sample:  # a repeated sample is another request, not a cached copy of the first
        lines.append(f"sample: {sample + 1}")
    return "\n".join(lines)


def run(public_dir):
    context = load("/runner/swarm_text.json")
    with open(f"{context['strategy_dir']}/SKILL.md", encoding="utf-8") as handle:
        skill = handle.read()
    products = load(f"{public_dir}/products.json")
    return [
        [swarm_model.complete(skill, facts(product, sample), MAX_TOKENS)
         for sample in range(context["samples"])]
        for product in products
    ]
