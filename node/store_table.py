"""The records table of schema version 3: a batch of records written as rows (header columns,
placeholder rows for the ids they name, edges, files), and rows read back as record bytes."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from typing import Any

import msgpack

from node.store_blobs import Blobs
from node.store_rows import (
    STRIPPED,
    Damaged,
    ReadRow,
    files_dictionary,
    full_bytes,
    pack_numbers,
    restored,
    stripped_body,
    unpack_numbers,
    whole_body,
)
from node.store_schema import EXPERIMENT, NOT_HELD, Names
from research_dag import Edge, Experiment, Header, Record, edges_of, encode_record, header_of

PAGE = 256  # ids per IN (...) statement
# Rows per INSERT statement, within SQLite's 999 parameters before 3.32: 11 a record row,
# 4 an edge.
INSERT_RECORDS = 90
INSERT_EDGES = 240
# The columns a row is read with (`read`), joined with its problem's and parent's ids.
READ_COLUMNS = ("r.seq, r.id, r.kind, r.created_ms, r.author, r.paths, r.body, r.refs,"
                " p.id, q.id FROM records r LEFT JOIN records p ON p.seq = r.problem"
                " LEFT JOIN records q ON q.seq = r.parent")
# Edges a held experiment's row keeps as columns rather than in `edges`.
COLUMN_EDGES = ("has_experiment", "has_child")


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


def write(conn: sqlite3.Connection, names: Names, blobs: Blobs, records: list[Record]) -> int:
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
    files = _store_files(conn, names, blobs, [r for r in new if isinstance(r, Experiment)])
    values: list[list[Any]] = []
    edge_rows: list[tuple[int, int, int, int]] = []
    for record in new:
        header, seq = headers[record.id], rows[record.id][0]
        body, refs, paths = _body(conn, names, record, files)
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


def _store_files(conn: sqlite3.Connection, names: Names, blobs: Blobs,
                 experiments: list[Experiment]) -> dict[bytes, tuple[int, bytes]]:
    """The experiments' files into `blobs`, each a delta against its parent's copy: digest ->
    (row number, bytes). Their parents' file lists are read in a few statements for the whole
    batch (a late joiner stores 1,024 records a response)."""
    digests: dict[str, dict[str, bytes]] = {}
    contents: dict[bytes, bytes] = {}
    for experiment in experiments:
        mine: dict[str, bytes] = {}
        for path in sorted(experiment.strategy):
            content = experiment.strategy[path].encode()
            mine[path] = hashlib.sha256(content).digest()
            contents[mine[path]] = content
        digests[experiment.id] = mine
    parents = _stored_files(conn, names, blobs, {
        e.parent for e in experiments if e.parent is not None and e.parent not in digests})
    files: list[tuple[bytes, bytes, bytes | None]] = []
    for experiment in experiments:
        of_parent = None if experiment.parent is None else (
            digests.get(experiment.parent) or parents.get(experiment.parent))
        for path, digest in digests[experiment.id].items():
            base = None if of_parent is None else of_parent.get(path)
            files.append((digest, contents[digest], None if base == digest else base))
    numbers = blobs.add(conn, files)
    return {digest: (numbers[digest], contents[digest]) for digest in contents}


def _stored_files(conn: sqlite3.Connection, names: Names, blobs: Blobs, ids: set[str]
                  ) -> dict[str, dict[str, bytes]]:
    """The file digests by path of these stored experiments (bases of small deltas); damaged
    ones are left out (reading that record will say so; its children's files are stored
    whole)."""
    found: dict[str, dict[str, int]] = {}
    wanted = sorted(ids)
    for start in range(0, len(wanted), PAGE):
        chunk = [bytes.fromhex(i) for i in wanted[start : start + PAGE]]
        for record_id, paths, refs in conn.execute(
                "SELECT id, paths, refs FROM records WHERE refs IS NOT NULL AND id IN"
                f" ({', '.join('?' * len(chunk))})", chunk):
            try:
                path_list = names.name(int(paths)).split("\n")
                found[bytes(record_id).hex()] = dict(
                    zip(path_list, unpack_numbers(bytes(refs), len(path_list)), strict=True))
            except (Damaged, KeyError, TypeError, ValueError):
                continue
    digest_of = blobs.digests(conn, (n for refs in found.values() for n in refs.values()))
    return {i: {path: digest_of[n] for path, n in refs.items() if n in digest_of}
            for i, refs in found.items()}


def _body(conn: sqlite3.Connection, names: Names, record: Record,
          files: dict[bytes, tuple[int, bytes]]) -> tuple[bytes, bytes | None, int | None]:
    """(body, refs, file set number) of a record's row."""
    encoded = encode_record(record)
    if not isinstance(record, Experiment):
        return whole_body(encoded), None, None
    paths = sorted(record.strategy)
    stored = [files[hashlib.sha256(record.strategy[p].encode()).digest()] for p in paths]
    # The record's canonical bytes (cached when it was decoded or first encoded) give its
    # plain values in canonical order: re-packed without sorting them in Python.
    body = stripped_body(msgpack.unpackb(encoded, raw=False),
                         files_dictionary([content for _, content in stored]))
    if body is None:
        return whole_body(encoded), None, None
    return (body, pack_numbers([n for n, _ in stored]),
            names.number(conn, "p:" + "\n".join(paths)))


def read(conn: sqlite3.Connection, names: Names, blobs: Blobs, row: tuple[Any, ...]
         ) -> ReadRow:
    """A row (READ_COLUMNS) with its record re-assembled: its full bytes, or the plain values
    they encode (one encoding fewer per read), or why it cannot be."""
    seq, raw_id, kind, created_ms, author, paths, body, refs, problem, parent = row
    record_id = bytes(raw_id).hex()
    try:
        kind_name = names.name(int(kind))
    except KeyError:
        return int(seq), record_id, "?", f"its kind {kind} has no name"
    try:
        body = bytes(body)
        if body[:1] != bytes([STRIPPED]):
            return int(seq), record_id, kind_name, full_bytes(body)
        path_list = names.name(int(paths)).split("\n")
        numbers = unpack_numbers(bytes(refs), len(path_list))
        contents = [blobs.content(conn, n) for n in numbers]
        columns = {
            "author": names.name(int(author)), "created_ms": int(created_ms), "kind": kind_name,
            "parent": None if parent is None else bytes(parent).hex(),
            "problem": bytes(problem).hex(),
            "strategy": {p: c.decode() for p, c in zip(path_list, contents, strict=True)},
        }
        return int(seq), record_id, kind_name, restored(body, columns,
                                                          files_dictionary(contents))
    except (Damaged, KeyError, TypeError, ValueError, UnicodeDecodeError,
            msgpack.UnpackException) as error:
        return int(seq), record_id, kind_name, f"{type(error).__name__}: {error}"
