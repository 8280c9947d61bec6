"""Writes data/ for landing_copy: ten products' facts (public) and the checklist rules (private).

Deterministic: the facts are written out here, so rerunning gives byte-identical files.
Run from anywhere: `python examples/landing_copy/generate.py`.
"""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

PRODUCTS = [
    {
        "name": "Lumo Desk Lamp",
        "price": "49",
        "benefit": "read without eye strain",
        "audience": "people who work late",
        "story": "Lumo shifts slowly from cool white to warm amber as the evening goes on. "
        "Its slim arm folds flat, so it fits on even the smallest desk. "
        "A single touch remembers your favourite brightness.",
    },
    {
        "name": "Tern Travel Mug",
        "price": "24",
        "benefit": "keep coffee hot for six hours",
        "audience": "commuters",
        "story": "The double steel wall keeps heat in and condensation out. "
        "The lid locks, so it can ride in a bag.",
    },
    {
        "name": "Quill Notebook",
        "price": "18",
        "benefit": "erase and reuse every page",
        "audience": "students",
        "story": "Write with any gel pen, then wipe the page clean with a damp cloth. "
        "Scan your notes to the cloud before you erase them.",
    },
    {
        "name": "Brisa Fan",
        "price": "79",
        "benefit": "sleep cool on hot nights",
        "audience": "light sleepers",
        "story": "Brisa moves air with a blade shape borrowed from owl wings, which makes it "
        "nearly silent on its lowest setting. It turns itself off when the room cools down. "
        "The base is small enough for a bedside table.",
    },
    {
        "name": "Sprout Planter",
        "price": "35",
        "benefit": "grow herbs without daily watering",
        "audience": "busy cooks",
        "story": "A hidden reservoir feeds the roots for two weeks. "
        "A float tells you when it needs a refill.",
    },
    {
        "name": "Pace Running Belt",
        "price": "29",
        "benefit": "carry your phone without bounce",
        "audience": "runners",
        "story": "The stretch fabric hugs your waist and holds a phone, keys and a gel. "
        "Reflective strips keep you visible at dawn and dusk. "
        "It washes in the machine with the rest of your kit.",
    },
    {
        "name": "Hearth Cast Iron Pan",
        "price": "65",
        "benefit": "sear steak like a restaurant",
        "audience": "home cooks",
        "story": "It comes seasoned and gets better every time you use it. "
        "The long handle stays cooler than the pan.",
    },
    {
        "name": "Loop Bike Lock",
        "price": "54",
        "benefit": "leave your bike without worry",
        "audience": "city cyclists",
        "story": "Hardened steel links resist bolt cutters for far longer than a lunch break. "
        "A soft rubber sleeve protects your frame from scratches. "
        "Two keys are included, and a third can be ordered with your code.",
    },
    {
        "name": "Nook Reading Pillow",
        "price": "42",
        "benefit": "read in bed in comfort",
        "audience": "bookworms",
        "story": "Its arms hold you upright and its pocket holds your book. "
        "The cover zips off for the wash.",
    },
    {
        "name": "Echo Kids Headphones",
        "price": "32",
        "benefit": "protect young ears",
        "audience": "parents",
        "story": "Volume is capped at a level that audiologists recommend for children. "
        "The band bends without breaking, even when it is sat on. "
        "A shared jack lets two kids listen to one tablet.",
    },
]

RULES = {
    "min_chars": 60,
    "max_chars": 200,
    "max_exclamations": 1,
    "shout_letters": 4,
    "cta_phrases": [
        "order yours",
        "order now",
        "buy now",
        "shop now",
        "get yours",
        "get one",
        "try it",
        "add to cart",
    ],
}


def write(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write(HERE / "data" / "public" / "products.json", PRODUCTS)
    write(HERE / "data" / "private" / "rules.json", RULES)
