"""The one way the dashboard writes JSON: every string through the sanitiser, every non-finite
float as null, and, for a document embedded in a page, `<`, `>` and `&` as escapes."""

from __future__ import annotations

import json
import math
from typing import Any

from node.untrusted_text import visible


def clean(document: Any) -> Any:
    """`document` with every string (keys too) passed through `visible` (controls, bidi and
    separators shown as escapes) and every NaN or infinity as None: JSON has neither."""
    if isinstance(document, str):
        return visible(document)
    if isinstance(document, bool) or document is None or isinstance(document, int):
        return document
    if isinstance(document, float):
        return document if math.isfinite(document) else None
    if isinstance(document, dict):
        return {visible(str(key)): clean(value) for key, value in document.items()}
    if isinstance(document, (list, tuple)):
        return [clean(value) for value in document]
    return visible(str(document))


def json_bytes(document: Any) -> bytes:
    """Compact ASCII JSON of `clean(document)`; raises if anything non-finite slipped by."""
    return json.dumps(clean(document), ensure_ascii=True, allow_nan=False,
                      separators=(",", ":")).encode("ascii")


def script_json(document: Any) -> str:
    """`json_bytes` for a `<script type="application/json">` element: no `</script>`, no
    `<!--`, no entity can end or change the element early."""
    text = json_bytes(document).decode("ascii")
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
