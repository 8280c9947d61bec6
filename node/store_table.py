"""The records table of schema version 3: a batch of records written as rows (header columns,
placeholder rows for the ids they name, edges, files), and rows read back as record bytes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import msgpack

from node.store_bodies import Caches, experiment_rows, experiment_values
from node.store_rows import LAYOUTS, Damaged, ReadRow, full_bytes, whole_body
from node.store_schema import EXPERIMENT, NOT_HELD
from research_dag import Edge, Experiment, Header, Record, edges_of, encode_record, header_of

PAGE = 256  # ids per IN (...) statement
# Rows per INSERT statement, within SQLite's 999 parameters before 3.32: 11 a record row,
# 4 an edge.
INSERT_RECORDS = 90
INSERT_EDGES = 240
# The columns a row is read with (`read`), joined with its problem's and parent's rows.
READ_COLUMNS = ("r.seq, r.id, r.kind, r.created_ms, r.author, r.paths, r.body, r.refs,"
                " r.problem, r.score, q.paths, q.refs, p.id, q.id FROM records r"
                " LEFT JOIN records p ON p.seq = r.problem LEFT JOIN records q ON q.seq = r.parent")


def column_edges(header: Header) -> set[Edge]:
    """The edges of a record that its row holds as columns (problem, parent)."""
    if header.kind != "experiment" or header.problem is None:
        return set()
    edges: set[Edge] = {(header.problem, header.id, "has_experiment")}
    if header.parent is not None:
        edges.add((header.parent, header.id, "has_child"))
    return edges


def rows_of(conn: sqlite3.Connection, ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Rows by id: id -> (seq, kind), held or not."""
    found: dict[str, tuple[int, int]] = {}
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), PAGE):
        chunk = [bytes.fromhex(i) for i in wanted[start : start + PAGE]]
        found.update((bytes(i).hex(), (int(seq), int(kind))) for seq, i, kind in conn.execute(
            f"SELECT seq, id, kind FROM records WHERE id IN ({', '.join('?' * len(chunk))})",
            chunk))
    return found


def write(conn: sqlite3.Connection, caches: Caches, records: list[Record]) -> int:
    """Store `records` (in the caller's write transaction); returns how many were not held."""
    first: dict[str, Record] = {}
    for record in records:
        first.setdefault(record.id, record)  # a second copy (another signature) changes nothing
    batch = list(first.values())
    headers = {record.id: header_of(record) for record in batch}
    edges = {record.id: [e for e in dict.fromkeys(edges_of(record))
                         if e not in column_edges(headers[record.id])] for record in batch}
    named = {i for h in headers.values() for i in (h.problem, h.parent) if i is not None}
    named.update(i for found in edges.values() for s, t, _ in found for i in (s, t))
    rows = rows_of(conn, named | set(headers))
    new = [r for r in batch if r.id not in rows or rows[r.id][1] == NOT_HELD]
    if not new:
        return 0
    refilled = {r.id for r in new if r.id in rows}
    next_seq = int(conn.execute("SELECT coalesce(max(seq), 0) FROM records").fetchone()[0]) + 1
    for record in new:
        if record.id not in rows:
            rows[record.id] = (next_seq, EXPERIMENT if record.kind == "experiment" else 1)
            next_seq += 1
    placeholders: list[tuple[int, bytes]] = []
    for record in new:
        header = headers[record.id]
        for named_id in (header.problem, header.parent, *(i for s, t, _ in edges[record.id]
                                                         for i in (s, t))):
            if named_id is not None and named_id not in rows:
                rows[named_id] = (next_seq, NOT_HELD)
                placeholders.append((next_seq, bytes.fromhex(named_id)))
                next_seq += 1
    names = caches.names
    bodies = experiment_rows(conn, caches, [r for r in new if isinstance(r, Experiment)],
                             {i: seq for i, (seq, _) in rows.items()})
    values: list[list[Any]] = []
    edge_rows: list[tuple[int, int, int, int]] = []
    for record in new:
        header, seq = headers[record.id], rows[record.id][0]
        body, refs, paths = bodies.get(record.id) or (whole_body(encode_record(record)), None,
                                                      None)
        values.append([seq, bytes.fromhex(record.id), names.number(conn, f"k:{record.kind}"),
                       None if header.problem is None else rows[header.problem][0],
                       None if header.parent is None else rows[header.parent][0],
                       header.created_ms, names.number(conn, f"a:{header.author}"),
                       header.score, paths, body, refs])
        edge_rows += [(seq, rows[s][0], rows[t][0], names.number(conn, f"r:{rel}"))
                      for s, t, rel in edges[record.id]]
    for start in range(0, len(placeholders), INSERT_RECORDS * 5):
        ids = placeholders[start : start + INSERT_RECORDS * 5]
        conn.execute("INSERT INTO records (seq, id, kind) VALUES "
                     + ", ".join([f"(?, ?, {NOT_HELD})"] * len(ids)),
                     [value for row in ids for value in row])
    inserted = [row for row in values if bytes(row[1]).hex() not in refilled]
    for start in range(0, len(inserted), INSERT_RECORDS):
        rows_chunk = inserted[start : start + INSERT_RECORDS]
        conn.execute("INSERT INTO records (seq, id, kind, problem, parent, created_ms, author,"
                     " score, paths, body, refs) VALUES "
                     + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows_chunk)),
                     [value for row in rows_chunk for value in row])
    for row in values:
        if bytes(row[1]).hex() in refilled:  # an id named before its record arrived
            conn.execute("UPDATE records SET kind = ?, problem = ?, parent = ?, created_ms = ?,"
                         " author = ?, score = ?, paths = ?, body = ?, refs = ? WHERE seq = ?",
                         [*row[2:], row[0]])
    for start in range(0, len(edge_rows), INSERT_EDGES):
        edge_chunk = edge_rows[start : start + INSERT_EDGES]
        conn.execute("INSERT INTO edges (owner, source, target, rel) VALUES "
                     + ", ".join(["(?, ?, ?, ?)"] * len(edge_chunk)),
                     [value for row in edge_chunk for value in row])
    return len(new)


def read(conn: sqlite3.Connection, caches: Caches, row: tuple[Any, ...]) -> ReadRow:
    """A row (READ_COLUMNS) with its record re-assembled: its full bytes, or the plain values
    they encode (one encoding fewer per read), or why it cannot be."""
    record_id = bytes(row[1]).hex()
    try:
        kind_name = caches.names.name(int(row[2]))
    except KeyError:
        return int(row[0]), record_id, "?", f"its kind {row[2]} has no name"
    try:
        body = bytes(row[6])
        if body[:1] and body[0] in LAYOUTS:
            return int(row[0]), record_id, kind_name, experiment_values(conn, caches, row[1:])
        return int(row[0]), record_id, kind_name, full_bytes(body)
    except (Damaged, KeyError, TypeError, ValueError, UnicodeDecodeError,
            msgpack.UnpackException) as error:
        return int(row[0]), record_id, kind_name, f"{type(error).__name__}: {error}"
