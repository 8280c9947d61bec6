"""A strategy file as static analysis sees it: bytes, node spans and pinned lines."""

from __future__ import annotations

import ast
import bisect
import io
import re
import tokenize

from research_dag import parse_python

_FIXED_COMMENT = re.compile(r"#\s*swarm:\s*fixed\s*")
_FIXED_LINE = re.compile(r"#\s*swarm:\s*fixed\s*$")
_SHOWN = 40  # characters of source quoted in a description
# Deepest AST the operators walk: real strategies nest under 20; the walk recurses about two
# frames a level, which must stay well inside Python's default limit of 1,000.
MAX_DEPTH = 200


def parse(text: str) -> ast.Module | None:
    """The module's AST, or None when it does not parse or nests deeper than MAX_DEPTH
    (warnings about the source ignored)."""
    try:
        tree = parse_python(text)
    # The parser's own limits: 200,000 chained additions raise RecursionError or
    # MemoryError depending on the operator (issue 8, finding 8).
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return None if _deeper_than(tree, MAX_DEPTH) else tree


def _deeper_than(tree: ast.AST, limit: int) -> bool:
    """Measured without recursion, so that the recursive site walk never meets a tree it
    cannot finish (a few thousand nested unary minuses parse, then overflowed the walk)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return False


def shorten(text: str) -> str:
    """Source quoted in a description: one line, at most a few dozen characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _SHOWN else flat[: _SHOWN - 3] + "..."


class SourceFile:
    """One parsed file: ast columns count UTF-8 bytes, so every offset here is a byte offset."""

    def __init__(self, path: str, text: str, tree: ast.Module) -> None:
        self.path = path
        self.tree = tree
        self.data = text.encode("utf-8")
        self.starts = [0]
        # bytes.splitlines breaks on \n, \r and \r\n only: the same lines the tokenizer counts.
        for line in self.data.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))
        self.fixed = _fixed_lines(text, tree)

    def span(self, node: ast.expr) -> tuple[int, int]:
        end_line = node.end_lineno or node.lineno
        end_col = node.end_col_offset if node.end_col_offset is not None else node.col_offset
        return (
            self.starts[node.lineno - 1] + node.col_offset,
            self.starts[end_line - 1] + end_col,
        )

    def extent(self, node: ast.expr) -> tuple[int, int]:
        """The node's span widened over parentheses that wrap exactly it: `(a)` in `(a) + b`."""
        start, end = self.span(node)
        while True:
            before, after = start, end
            while before > 0 and self.data[before - 1] in b" \t\r\n\\":
                before -= 1
            while after < len(self.data) and self.data[after] in b" \t\r\n\\":
                after += 1
            if self.data[before - 1 : before] != b"(" or self.data[after : after + 1] != b")":
                return start, end
            start, end = before - 1, after + 1

    def text(self, start: int, end: int) -> str:
        return self.data[start:end].decode("utf-8")

    def quote(self, node: ast.expr) -> str:
        """The node's source on one line, shortened for a description."""
        return shorten(self.text(*self.span(node)))

    def line(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)

    def line_bounds(self, start: int, end: int) -> tuple[int, int]:
        """Offsets of the start of [start, end)'s first line and the end of its last line."""
        first, last = self.line(start), self.line(max(start, end - 1))
        return self.starts[first - 1], self.starts[min(last, len(self.starts) - 1)]

    def pinned(self, start: int, end: int) -> bool:
        """True when [start, end) touches a line pinned with `# swarm: fixed`."""
        first, last = self.line(start), self.line(max(start, end - 1))
        return any(number in self.fixed for number in range(first, last + 1))


def _fixed_lines(text: str, tree: ast.Module) -> set[int]:
    """Lines ending in `# swarm: fixed`. On a statement's first line the comment pins the whole
    statement (`X = [  # swarm: fixed` over several lines), or a compound statement's header."""
    lines: set[int] = set()
    if "swarm" not in text:
        return lines  # tokenizing is most of the cost of reading a file
    try:
        for token in tokenize.generate_tokens(io.StringIO(text, newline=None).readline):
            if token.type == tokenize.COMMENT and _FIXED_COMMENT.fullmatch(token.string):
                lines.add(token.start[0])
    except (tokenize.TokenError, SyntaxError):
        lines = {n for n, line in enumerate(text.splitlines(), 1) if _FIXED_LINE.search(line)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt) or node.lineno not in lines:
            continue
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
            last = max(node.lineno, body[0].lineno - 1)
        elif isinstance(node, ast.Match):
            last = node.lineno
        else:
            last = node.end_lineno or node.lineno
        lines.update(range(node.lineno, last + 1))
    return lines
