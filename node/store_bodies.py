"""An experiment's row: its files into the blobs table as deltas against its parent's, its body
without what the row and its parent give back (diff rebuilt, ok score, columns), deflated with
its problem's dictionary; and the same row read back into the record's plain values."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import msgpack

from node.store_blobs import Blobs
from node.store_rows import (
    LAYOUTS,
    PROBLEM_WORDS,
    REBUILT_DIFF,
    STRIPPED,
    Damaged,
    files_dictionary,
    pack_canonical,
    pack_numbers,
    rebuilt_diff,
    restored,
    stripped_body,
    stripped_rest,
    unpack_numbers,
    whole_body,
)
from node.store_schema import EXPERIMENT, Names
from node.store_words import SAMPLES, Words
from research_dag import Experiment, encode_record

PAGE = 256  # ids per IN (...) statement
REWRITTEN = 2 * SAMPLES  # a problem's experiments stored again when it gets its dictionary
# An experiment's row as `experiment_values` reads it, after its row number.
STRIPPED_COLUMNS = ("r.seq, r.id, r.kind, r.created_ms, r.author, r.paths, r.body, r.refs,"
                    " r.problem, r.score, q.paths, q.refs, p.id, q.id FROM records r"
                    " JOIN records p ON p.seq = r.problem LEFT JOIN records q ON q.seq = r.parent")
DIFF_HEAD = "--- a/"  # how every diff `rebuilt_diff` makes begins: others are not tried
# A diff is left out (rebuilt from the parent's files on every read) only when rebuilding is
# cheap: difflib's time grows with the files' lines times the diff's hunks, and a peer chooses
# both (a 9,000-line pair with alternating lines took 10 s, under the store's lock, at every
# read). At these bounds a rebuild takes at most ~40 ms (bench/RESULTS.md, "The store's
# rebuilt diffs"); the bundled problems' diffs are 277 characters (median), 1,141 at most, on
# strategies of a few KB. Anything larger is stored whole: a few hundred bytes more.
REBUILT_DIFF_CHARS = 2048
REBUILT_FILES_CHARS = 32_768  # the parent's files and the experiment's, together


@dataclass
class Caches:
    """What the store keeps in memory to read and write rows (bounded: docs/storage.md)."""

    names: Names = field(default_factory=Names)
    blobs: Blobs = field(default_factory=Blobs)
    words: Words = field(default_factory=Words)

    def clear(self, conn: sqlite3.Connection) -> None:
        """After a rolled-back transaction: what it added is gone."""
        self.names.load(conn)
        self.blobs.clear()
        self.words.clear()


Row: TypeAlias = tuple[bytes, bytes | None, int | None]  # body, refs, file set number


def _cheap_to_rebuild(experiment: Experiment, parent: dict[str, str]) -> bool:
    """May this experiment's diff be left out, to be rebuilt on every read (the bounds
    above)?"""
    if not experiment.diff.startswith(DIFF_HEAD) or len(experiment.diff) > REBUILT_DIFF_CHARS:
        return False
    size = sum(map(len, parent.values())) + sum(map(len, experiment.strategy.values()))
    return size <= REBUILT_FILES_CHARS


def experiment_rows(conn: sqlite3.Connection, caches: Caches, experiments: list[Experiment],
                    problem_of: dict[str, int]) -> dict[str, Row]:
    """(body, refs, file set number) by id for these experiments, whose problems have these row
    numbers; their files go into the blobs table on the way."""
    files, parents = _store_files(conn, caches, experiments)
    rests: dict[str, tuple[dict[str, Any], int]] = {}
    for experiment in experiments:
        values = msgpack.unpackb(encode_record(experiment), raw=False)  # in canonical order
        parent = parents.get(experiment.parent or "")
        rebuilt = (parent is not None and _cheap_to_rebuild(experiment, parent)
                   and rebuilt_diff(parent, dict(experiment.strategy)) == experiment.diff)
        try:
            rests[experiment.id] = stripped_rest(values, rebuilt)
        except KeyError:
            continue
    by_problem: dict[int, list[str]] = {}
    for experiment in experiments:
        if experiment.id in rests:
            by_problem.setdefault(problem_of[experiment.problem], []).append(experiment.id)
    words = {problem: _words(conn, caches, problem, [rests[i][0] for i in ids])
             for problem, ids in by_problem.items()}
    rows: dict[str, Row] = {}
    for experiment in experiments:
        paths = sorted(experiment.strategy)
        stored = [files[hashlib.sha256(experiment.strategy[p].encode()).digest()] for p in paths]
        if experiment.id not in rests:
            rows[experiment.id] = (whole_body(encode_record(experiment)), None, None)
            continue
        rest, flags = rests[experiment.id]
        dictionary = words[problem_of[experiment.problem]]
        if dictionary is None:
            dictionary = files_dictionary([content for _, content in stored])
        else:
            flags |= PROBLEM_WORDS
        rows[experiment.id] = (stripped_body(rest, flags, dictionary),
                               pack_numbers([n for n, _ in stored]),
                               caches.names.number(conn, "p:" + "\n".join(paths)))
    return rows


def _words(conn: sqlite3.Connection, caches: Caches, problem: int,
           batch: list[dict[str, Any]]) -> bytes | None:
    """The problem's dictionary; made from its stored bodies and this batch's once it has
    SAMPLES experiments."""
    found = caches.words.of(conn, problem)
    if found is not None:
        return found
    stored = int(conn.execute(f"SELECT count(*) FROM records WHERE problem = ? AND kind = "
                              f"{EXPERIMENT}", (problem,)).fetchone()[0])
    if stored + len(batch) < SAMPLES:
        return None
    # Its stored experiments (few: up to SAMPLES before now, unless this file was upgraded or
    # written before dictionaries existed), newest first: samples, then stored again with it.
    rows = conn.execute(
        f"SELECT {STRIPPED_COLUMNS} WHERE r.problem = ? AND r.kind = {EXPERIMENT}"
        " ORDER BY r.seq DESC LIMIT ?", (problem, REWRITTEN)).fetchall()
    older: list[tuple[int, dict[str, Any], int]] = []
    for row in rows:
        try:
            values = experiment_values(conn, caches, row[1:])
            body = bytes(row[6])
            rest, flags = stripped_rest(values, bool((body[0] - STRIPPED) & REBUILT_DIFF))
        except (Damaged, KeyError, TypeError, ValueError, UnicodeDecodeError,
                msgpack.UnpackException):
            continue  # a body stored whole, or damaged: not a sample
        older.append((int(row[0]), rest, flags))
    samples = [pack_canonical(rest) for _, rest, _ in reversed(older)]
    samples += [pack_canonical(rest) for rest in batch]
    dictionary = caches.words.create(conn, problem, samples)
    for seq, rest, flags in older:
        conn.execute("UPDATE records SET body = ? WHERE seq = ?",
                     (stripped_body(rest, flags | PROBLEM_WORDS, dictionary), seq))
    return dictionary


def _store_files(conn: sqlite3.Connection, caches: Caches, experiments: list[Experiment]
                 ) -> tuple[dict[bytes, tuple[int, bytes]], dict[str, dict[str, str]]]:
    """The experiments' files into `blobs`, each a delta against its parent's copy: digest ->
    (row number, bytes); and the parents' files by id (a diff is rebuilt from them). What the
    batch needs is read in a few statements (a late joiner stores 1,024 records a response)."""
    digests: dict[str, dict[str, bytes]] = {}
    contents: dict[bytes, bytes] = {}
    for experiment in experiments:
        mine: dict[str, bytes] = {}
        for path in sorted(experiment.strategy):
            content = experiment.strategy[path].encode()
            mine[path] = hashlib.sha256(content).digest()
            contents[mine[path]] = content
        digests[experiment.id] = mine
    stored = _stored_files(conn, caches, {
        e.parent for e in experiments if e.parent is not None and e.parent not in digests})
    files: list[tuple[bytes, bytes, int | bytes | None]] = []
    for experiment in experiments:
        in_batch = digests.get(experiment.parent or "")
        of_parent: dict[str, int | bytes] = dict(
            in_batch if in_batch is not None else stored.get(experiment.parent or "", {}))
        for path, digest in digests[experiment.id].items():
            base = of_parent.get(path)
            files.append((digest, contents[digest], None if base == digest else base))
    numbers = caches.blobs.add(conn, files)
    parents: dict[str, dict[str, str]] = {}
    for experiment in experiments:
        parent = experiment.parent
        if parent is None or parent in parents:
            continue
        try:
            if parent in digests:
                parents[parent] = {p: contents[d].decode() for p, d in digests[parent].items()}
            elif parent in stored:
                parents[parent] = {p: caches.blobs.content(conn, n).decode()
                                   for p, n in stored[parent].items()}
        except (Damaged, UnicodeDecodeError):
            continue  # a damaged parent: its children keep their diffs
    return {d: (numbers[d], contents[d]) for d in contents}, parents


def _stored_files(conn: sqlite3.Connection, caches: Caches, ids: set[str]
                  ) -> dict[str, dict[str, int]]:
    """The files' row numbers by path of these stored experiments; damaged ones are left out
    (reading that record will say so; its children's files are stored whole)."""
    found: dict[str, dict[str, int]] = {}
    wanted = sorted(ids)
    for start in range(0, len(wanted), PAGE):
        chunk = [bytes.fromhex(i) for i in wanted[start : start + PAGE]]
        for record_id, paths, refs in conn.execute(
                "SELECT id, paths, refs FROM records WHERE refs IS NOT NULL AND id IN"
                f" ({', '.join('?' * len(chunk))})", chunk):
            try:
                path_list = caches.names.name(int(paths)).split("\n")
                found[bytes(record_id).hex()] = dict(
                    zip(path_list, unpack_numbers(bytes(refs), len(path_list)), strict=True))
            except (Damaged, KeyError, TypeError, ValueError):
                continue
    return found


def experiment_values(conn: sqlite3.Connection, caches: Caches, row: tuple[Any, ...]
                      ) -> dict[str, Any]:
    """The plain values of an experiment's stripped row: (id, kind, created_ms, author, paths,
    body, refs, problem's row number, score, parent's paths and refs, problem id, parent id).
    Damaged (or KeyError, ValueError...) when it cannot be re-assembled."""
    (_, kind, created_ms, author, paths, body, refs, problem, score, parent_paths,
     parent_refs, problem_id, parent_id) = row
    names = caches.names
    if body[0] not in LAYOUTS:
        raise Damaged(f"its body has an unknown layout ({body[:1].hex()})")
    flags = body[0] - STRIPPED
    own = _files(conn, caches, paths, refs)
    columns: dict[str, Any] = {
        "author": names.name(int(author)), "created_ms": int(created_ms),
        "kind": names.name(int(kind)), "parent": None if parent_id is None else
        bytes(parent_id).hex(), "problem": bytes(problem_id).hex(),
        "strategy": {p: c.decode() for p, c in own.items()},
    }
    if flags & REBUILT_DIFF:
        if parent_refs is None:
            raise Damaged("its diff is rebuilt from its parent's files, which are not held")
        parent = _files(conn, caches, parent_paths, parent_refs)
        columns["diff"] = rebuilt_diff({p: c.decode() for p, c in parent.items()},
                                       columns["strategy"])
    if flags & PROBLEM_WORDS:
        dictionary = caches.words.of(conn, int(problem))
        if dictionary is None:
            raise Damaged("its problem's dictionary is missing")
    else:
        dictionary = files_dictionary(list(own.values()))
    return restored(bytes(body), columns, None if score is None else float(score), dictionary)


def _files(conn: sqlite3.Connection, caches: Caches, paths: Any, refs: Any) -> dict[str, bytes]:
    path_list = caches.names.name(int(paths)).split("\n")
    numbers = unpack_numbers(bytes(refs), len(path_list))
    return {p: caches.blobs.content(conn, n) for p, n in zip(path_list, numbers, strict=True)}


def keep_diffs(conn: sqlite3.Connection, caches: Caches, parents: list[int]) -> None:
    """Before these experiments' rows are dropped: their held children whose diffs are rebuilt
    from them store their diffs again (in the caller's transaction; one pass over the
    experiments, as the parent column has no index)."""
    dropped = set(parents)
    children = [int(seq) for seq, parent, layout in conn.execute(
        "SELECT seq, parent, hex(substr(body, 1, 1)) FROM records WHERE kind ="
        f" {EXPERIMENT} AND parent IS NOT NULL").fetchall()
        if int(parent) in dropped and layout and int(layout, 16) in LAYOUTS
        and (int(layout, 16) - STRIPPED) & REBUILT_DIFF]
    for start in range(0, len(children), PAGE):
        chunk = children[start : start + PAGE]
        for row in conn.execute(
                f"SELECT {STRIPPED_COLUMNS} WHERE r.seq IN ({', '.join('?' * len(chunk))})",
                chunk).fetchall():
            body = bytes(row[6])
            try:
                values = experiment_values(conn, caches, row[1:])
            except (Damaged, KeyError, TypeError, ValueError, UnicodeDecodeError,
                    msgpack.UnpackException):
                continue  # damaged already: reading it says so
            rest, flags = stripped_rest(values, False)
            if (body[0] - STRIPPED) & PROBLEM_WORDS:
                dictionary = caches.words.of(conn, int(row[8]))
                flags |= PROBLEM_WORDS
            else:
                dictionary = files_dictionary(list(_files(conn, caches, row[5], row[7]).values()))
            assert dictionary is not None
            conn.execute("UPDATE records SET body = ? WHERE seq = ?",
                         (stripped_body(rest, flags, dictionary), int(row[0])))
