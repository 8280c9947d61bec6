"""Node identity: libp2p-compatible peer ids, the key file, and record signatures."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from node.identity import (
    IDENTITY_FILE,
    Identity,
    IdentityError,
    load_or_create,
    public_key_from_peer_id,
    sign_record,
    verify_record,
)
from research_dag import Budget, Experiment, Metric, Outcome, Problem, Record, validate_record

# The Ed25519 vector of the libp2p peer-ids spec (also used by rust-libp2p's keypair tests).
SPEC_SEED = bytes.fromhex("7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d")
SPEC_PUBLIC_PROTOBUF = "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
SPEC_PRIVATE_PROTOBUF = (
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d"
    "1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
)
SPEC_PEER_ID = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"
PROBLEM_ID = "ab" * 32


def _experiment() -> Experiment:
    return Experiment(
        problem=PROBLEM_ID,
        parent="cd" * 32,
        strategy={"strategy.py": "def solve(x):\n    return x\n"},
        diff="-a\n+b\n",
        mutation_kind="perturb_constant",
        description="bigger step",
        hypothesis="larger steps converge faster",
        created_ms=1_700_000_000_000,
        outcome=Outcome(
            status="ok",
            score=0.5,
            items={"sorted": True},
            strategy_fuel=123,
            evaluator_fuel=45,
            details={"n": 3, "note": "x", "ratio": 0.25, "flag": False},
        ),
    )


def _problem() -> Problem:
    return Problem(
        name="toy",
        statement="sort numbers",
        domains=["sorting"],
        metric=Metric(name="score", direction="maximize", target=1.0),
        checklist=["sorted"],
        budget=Budget(fuel=10_000_000, memory_mb=64, wall_s=5.0),
        mutable=["strategy.py"],
        seed=7,
        files={"strategy.py": b"def solve(x):\n    return x\n", "evaluate.py": b"print(1)\n"},
    )


def _tampered(record: Record, field: str, value: Any) -> Record:
    """The record with one field changed, rebuilt (so no cached id survives)."""
    raw = record.plain()
    raw[field] = value
    return validate_record(raw)


# ---- peer ids ------------------------------------------------------------------------------


def test_spec_vector_gives_the_spec_peer_id_and_key_encodings() -> None:
    identity = Identity.from_seed(SPEC_SEED)
    assert identity.peer_id == SPEC_PEER_ID
    assert "080112" + "20" + identity.public_key.hex() == SPEC_PUBLIC_PROTOBUF
    assert identity.to_key_file_bytes().hex() == SPEC_PRIVATE_PROTOBUF
    assert public_key_from_peer_id(SPEC_PEER_ID) == identity.public_key


@pytest.mark.parametrize("seed_byte", [0, 1, 0x7F, 0xFF])
def test_peer_id_matches_libp2p_own_computation(seed_byte: int) -> None:
    from libp2p.crypto.ed25519 import Ed25519PrivateKey
    from libp2p.crypto.keys import PrivateKey
    from libp2p.peer.id import ID

    seed = bytes([seed_byte]) * 31 + b"\x42"
    ours = Identity.from_seed(seed)
    theirs = Ed25519PrivateKey.new(seed)
    public = theirs.get_public_key()
    assert ours.peer_id == ID.from_pubkey(public).to_base58()
    assert ours.public_key == public.to_bytes()
    # Deterministic Ed25519: both libraries produce the same signature, and libp2p accepts ours.
    assert ours.sign(b"message") == theirs.sign(b"message")
    assert public.verify(b"message", ours.sign(b"message"))
    stored = PrivateKey.deserialize_from_protobuf(ours.to_key_file_bytes())
    assert stored.key_type == 1 and stored.data == seed + ours.public_key


def test_generated_identities_differ_and_round_trip_their_peer_ids() -> None:
    first, second = Identity.generate(), Identity.generate()
    assert first.peer_id != second.peer_id
    assert first.peer_id.startswith("12D3KooW")
    assert public_key_from_peer_id(second.peer_id) == second.public_key
    assert Identity.from_seed(first.private_key) == first


def test_repr_hides_the_private_key() -> None:
    identity = Identity.from_seed(SPEC_SEED)
    assert SPEC_SEED.hex() not in repr(identity)
    assert repr(SPEC_SEED) not in repr(identity)
    assert "private_key" not in repr(identity)


@pytest.mark.parametrize(
    "peer_id",
    [
        "",
        "local",
        "0OIl",  # not base58btc
        "12D3KooWé",
        "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",  # sha256 multihash: key not inlined
        "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY",  # secp256k1 key
        SPEC_PEER_ID[:-1],
        SPEC_PEER_ID + "1",
        "1" * 129,
    ],
)
def test_public_key_from_peer_id_refuses_anything_but_inline_ed25519(peer_id: str) -> None:
    with pytest.raises(IdentityError):
        public_key_from_peer_id(peer_id)


def test_from_seed_refuses_a_wrong_length() -> None:
    with pytest.raises(IdentityError, match="32 bytes"):
        Identity.from_seed(b"short")


# ---- signing -------------------------------------------------------------------------------


def test_signed_records_verify_and_unsigned_do_not() -> None:
    identity = Identity.from_seed(SPEC_SEED)
    for record in (_experiment(), _problem()):
        assert not verify_record(record)  # author "local", no signature
        signed = sign_record(record, identity)
        assert signed.author == identity.peer_id
        assert len(signed.signature) == 64
        assert verify_record(signed)
        assert type(signed) is type(record)


def test_signing_changes_the_id_and_never_keeps_a_stale_cached_one() -> None:
    record = _experiment()
    stale = record.id  # cached on the instance under author "local"
    signed = sign_record(record, Identity.from_seed(SPEC_SEED))
    rebuilt = validate_record(signed.plain())
    assert signed.id == rebuilt.id != stale
    # The signature is outside the id, so re-signing by the same author keeps the id.
    assert sign_record(signed, Identity.from_seed(SPEC_SEED)).id == signed.id


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("created_ms", 1_700_000_000_001),
        ("problem", "ef" * 32),
        ("parent", None),
        ("strategy", {"strategy.py": "def solve(x):\n    return x \n"}),
        ("diff", ""),
        ("mutation_kind", "swap"),
        ("description", "bigger step!"),
        ("hypothesis", ""),
        ("hypothesis_id", "12" * 32),
        ("mutator", "anthropic"),
        ("outcome", {"status": "ok", "score": 0.5000001}),
        ("outcome", {"status": "crash"}),
    ],
)
def test_tampering_any_field_breaks_the_signature(field: str, value: Any) -> None:
    signed = sign_record(_experiment(), Identity.from_seed(SPEC_SEED))
    assert not verify_record(_tampered(signed, field, value))


def test_tampering_problem_files_breaks_the_signature() -> None:
    signed = sign_record(_problem(), Identity.from_seed(SPEC_SEED))
    files = {**signed.files, "evaluate.py": b"print(2)\n"}  # type: ignore[union-attr]
    assert not verify_record(_tampered(signed, "files", files))
    assert not verify_record(_tampered(signed, "budget", {"fuel": 20_000_000}))


def test_a_flipped_signature_bit_or_a_truncated_signature_fails() -> None:
    signed = sign_record(_experiment(), Identity.from_seed(SPEC_SEED))
    flipped = bytes([signed.signature[0] ^ 1]) + signed.signature[1:]
    assert not verify_record(_tampered(signed, "signature", flipped))
    assert not verify_record(_tampered(signed, "signature", signed.signature[:-1]))
    assert not verify_record(_tampered(signed, "signature", b""))


def test_a_copy_under_another_author_does_not_verify() -> None:
    signed = sign_record(_experiment(), Identity.from_seed(SPEC_SEED))
    other = Identity.generate()
    assert not verify_record(_tampered(signed, "author", other.peer_id))
    assert not verify_record(_tampered(signed, "author", "local"))
    assert not verify_record(_tampered(signed, "author", "not a peer id"))
    # model_copy carries the cached id: verification must not trust it.
    copied = signed.model_copy(update={"author": other.peer_id})
    assert not verify_record(copied)


# ---- key file ------------------------------------------------------------------------------


def test_load_or_create_persists_one_identity_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "data" / IDENTITY_FILE
    created = load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == created.to_key_file_bytes()
    assert load_or_create(path) == created
    assert sorted(p.name for p in path.parent.iterdir()) == [IDENTITY_FILE]  # no temp left


def test_load_or_create_reads_a_libp2p_key_file(tmp_path: Path) -> None:
    path = tmp_path / IDENTITY_FILE
    path.write_bytes(bytes.fromhex(SPEC_PRIVATE_PROTOBUF))
    assert load_or_create(path).peer_id == SPEC_PEER_ID


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage",
        bytes.fromhex(SPEC_PRIVATE_PROTOBUF)[:-1],
        bytes.fromhex(SPEC_PRIVATE_PROTOBUF) + b"\n",
        bytes.fromhex("08021240") + bytes.fromhex(SPEC_PRIVATE_PROTOBUF)[4:],  # secp256k1 type
        bytes.fromhex(SPEC_PRIVATE_PROTOBUF)[:-1] + b"\x00",  # public key does not match seed
    ],
)
def test_load_or_create_refuses_a_corrupt_key_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / IDENTITY_FILE
    path.write_bytes(content)
    with pytest.raises(IdentityError, match="corrupt") as caught:
        load_or_create(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == content  # never overwritten


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_load_or_create_reports_an_unreadable_key_file(tmp_path: Path) -> None:
    path = tmp_path / IDENTITY_FILE
    load_or_create(path)
    path.chmod(0)
    with pytest.raises(IdentityError, match="cannot read"):
        load_or_create(path)


def test_load_or_create_reports_an_unusable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    path = blocker / IDENTITY_FILE
    with pytest.raises(IdentityError, match="identity key file") as caught:
        load_or_create(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("kind", ["fifo", "huge", "directory"])
def test_load_or_create_refuses_a_key_file_that_is_not_a_small_regular_file(
    tmp_path: Path, kind: str
) -> None:
    """A named pipe as identity.key would block a node forever; a huge file would be read
    into memory; a directory is not a key. Each is one clear error."""
    path = tmp_path / IDENTITY_FILE
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "huge":
        path.write_bytes(b"\0" * 10_000_000)
    else:
        path.mkdir()
    with pytest.raises(IdentityError, match="identity key file") as caught:
        load_or_create(path)
    assert str(path) in str(caught.value)
