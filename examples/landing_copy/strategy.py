"""Landing-page copy: one short blurb per product, assembled from the product's facts.

The knobs below choose which sections appear, in what order and in what tone. The evaluator
checks each blurb against a hidden five-point checklist (name, price, call to action, length,
no shouting).
"""

import json

SECTIONS = ["headline", "story", "benefit", "cta"]  # rendered in this order
INCLUDE_PRICE = False  # put the price in the headline
EXCITED = True  # end the headline and the call to action with exclamation marks
EXCLAMATIONS = 3  # how many exclamation marks, when excited
STORY_SENTENCES = 2  # sentences of the product's story to tell
MAX_CHARS = 200.0  # hard cut, at a word boundary


def first_sentences(text, count):
    sentences = [part.strip().rstrip(".") for part in text.split(". ") if part.strip()]
    return " ".join(f"{sentence}." for sentence in sentences[:count])


def section(name, product):
    mark = "!" * EXCLAMATIONS if EXCITED else "."
    if name == "headline":
        price = f", now ${product['price']}" if INCLUDE_PRICE else ""
        return f"{product['name']}{price}{mark}"
    if name == "story":
        return first_sentences(product["story"], STORY_SENTENCES)
    if name == "benefit":
        return f"It helps you {product['benefit']}."
    if name == "cta":
        return f"Order yours today{mark}"
    return ""


def cut(text, limit):
    """The longest prefix of whole words that fits in `limit` characters."""
    if len(text) <= limit:
        return text
    return " ".join(text[: limit + 1].split(" ")[:-1])


def render(product):
    parts = [section(name, product) for name in SECTIONS]
    return cut(" ".join(part for part in parts if part), int(MAX_CHARS))


def solve(public_dir):
    with open(f"{public_dir}/products.json", encoding="utf-8") as handle:
        products = json.load(handle)
    return [render(product) for product in products]
