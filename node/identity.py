"""A node's Ed25519 identity: its key file, its libp2p peer id, and record signing."""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.package_files import FileTooLarge, UnreadableFile, read_regular
from research_dag import Record

IDENTITY_FILE = "identity.key"  # conventional name inside a node's data directory
SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
MAX_PEER_ID_CHARS = 128  # the records' author bound; also caps base58 work on hostile input

# libp2p's crypto.proto: message PublicKey/PrivateKey {KeyType Type = 1; bytes Data = 2;}.
# Field 1 as a varint (tag 0x08), KeyType Ed25519 = 1; field 2 length-delimited (tag 0x12).
_ED25519_PUBLIC_PREFIX = bytes([0x08, 0x01, 0x12, PUBLIC_KEY_BYTES])
_ED25519_PRIVATE_PREFIX = bytes([0x08, 0x01, 0x12, SEED_BYTES + PUBLIC_KEY_BYTES])
KEY_FILE_BYTES = len(_ED25519_PRIVATE_PREFIX) + SEED_BYTES + PUBLIC_KEY_BYTES
# Multihash "identity" (code 0x00) then the digest length: the key is inlined, not hashed.
_IDENTITY_MULTIHASH = bytes([0x00, len(_ED25519_PUBLIC_PREFIX) + PUBLIC_KEY_BYTES])


class IdentityError(Exception):
    """A key file or peer id that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Identity:
    """An Ed25519 key pair and the libp2p peer id derived from its public key."""

    private_key: bytes = field(repr=False)  # the 32-byte seed
    public_key: bytes
    peer_id: str

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        if len(seed) != SEED_BYTES:
            raise IdentityError(f"an Ed25519 seed is {SEED_BYTES} bytes, not {len(seed)}")
        public = (
            Ed25519PrivateKey.from_private_bytes(seed)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        return cls(
            private_key=bytes(seed), public_key=public, peer_id=peer_id_from_public_key(public)
        )

    @classmethod
    def generate(cls) -> Identity:
        return cls.from_seed(os.urandom(SEED_BYTES))

    def sign(self, data: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.private_key).sign(data)

    def to_key_file_bytes(self) -> bytes:
        """libp2p's marshalled PrivateKey (what go-/js-libp2p store): seed then public key."""
        return _ED25519_PRIVATE_PREFIX + self.private_key + self.public_key


def peer_id_from_public_key(public_key: bytes) -> str:
    """The libp2p peer id: base58btc(identity multihash(protobuf PublicKey{Ed25519, key}))."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise IdentityError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes")
    encoded: bytes = base58.b58encode(_IDENTITY_MULTIHASH + _ED25519_PUBLIC_PREFIX + public_key)
    return encoded.decode("ascii")


def public_key_from_peer_id(peer_id: str) -> bytes:
    """The raw Ed25519 public key inlined in a peer id; IdentityError for any other kind."""
    if not isinstance(peer_id, str) or not 0 < len(peer_id) <= MAX_PEER_ID_CHARS:
        raise IdentityError(f"peer id {peer_id!r:.80} is not a string of 1..{MAX_PEER_ID_CHARS}")
    try:
        raw: bytes = base58.b58decode(peer_id)
    except ValueError:  # includes UnicodeEncodeError for non-ASCII text
        raise IdentityError(f"peer id {peer_id!r} is not base58btc") from None
    prefix = _IDENTITY_MULTIHASH + _ED25519_PUBLIC_PREFIX
    if len(raw) != len(prefix) + PUBLIC_KEY_BYTES or not raw.startswith(prefix):
        raise IdentityError(
            f"peer id {peer_id!r} does not inline an Ed25519 public key"
            " (identity multihash of a protobuf PublicKey with KeyType Ed25519)"
        )
    return raw[len(prefix) :]


def load_or_create(path: Path) -> Identity:
    """The identity in key file `path`, creating it (mode 0600, atomically) if absent."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return _create(path)
    except OSError as error:
        raise IdentityError(f"cannot read identity key file {path}: {error}") from None
    try:  # a regular file, bounded: a pipe or device there must not block or fill memory
        data = read_regular(path, 2 * KEY_FILE_BYTES)
    except FileTooLarge:
        raise IdentityError(
            f"identity key file {path} is corrupt (far larger than a {KEY_FILE_BYTES}-byte libp2p"
            " Ed25519 private key); restore it from a backup, or delete it to start over under a"
            " new peer id"
        ) from None
    except UnreadableFile as error:
        raise IdentityError(f"cannot read identity key file: {error}") from None
    return _parse_key_file(path, data)


def _parse_key_file(path: Path, data: bytes) -> Identity:
    expected = KEY_FILE_BYTES
    if len(data) != expected or not data.startswith(_ED25519_PRIVATE_PREFIX):
        raise IdentityError(
            f"identity key file {path} is corrupt (expected a {expected}-byte libp2p Ed25519"
            f" private key, found {len(data)} bytes); restore it from a backup, or delete it"
            " to start over under a new peer id"
        )
    seed = data[len(_ED25519_PRIVATE_PREFIX) :][:SEED_BYTES]
    identity = Identity.from_seed(seed)
    if identity.to_key_file_bytes() != data:
        raise IdentityError(
            f"identity key file {path} is corrupt (its public key does not match its seed);"
            " restore it from a backup, or delete it to start over under a new peer id"
        )
    return identity


def _create(path: Path, identity: Identity | None = None) -> Identity:
    """A new key file at `path` (mode 0600 from its first byte, whole or absent after a
    crash) holding `identity` (a new one by default); one created meanwhile is kept."""
    identity = identity or Identity.generate()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(identity.to_key_file_bytes())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link, not replace: if another process created the key meanwhile, keep theirs.
            os.link(temporary, path)
        except FileExistsError:
            return load_or_create(path)
        _fsync_directory(path.parent)
    except OSError as error:
        raise IdentityError(f"cannot create identity key file {path}: {error}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return identity


def save_identity(path: Path, identity: Identity) -> None:
    """Keep `identity` in a new key file at `path` (a simulation's node 0, browsed later as
    that node); IdentityError when the file holds another identity."""
    if _create(path, identity).peer_id != identity.peer_id:
        raise IdentityError(f"identity key file {path} holds another identity: give a new "
                            "directory")


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sign_record(record: Record, identity: Identity) -> Record:
    """A copy of `record` authored by `identity`, signed over its canonical bytes."""
    unsigned = _replace(record, {"author": identity.peer_id, "signature": b""})
    # The id (cached on the instance) excludes the signature, so it carries over unchanged.
    return unsigned.model_copy(update={"signature": identity.sign(unsigned.canonical_bytes())})


def verify_record(record: Record, unsigned: bytes | None = None) -> bool:
    """True when `record.signature` is its author's Ed25519 signature of its canonical bytes
    (`unsigned`: those bytes, when the caller made them already: `record_encodings`)."""
    if len(record.signature) != SIGNATURE_BYTES:
        return False  # unsigned ("local" author, empty signature) or not an Ed25519 signature
    try:
        public = _public_key(record.author)
        public.verify(record.signature, record.canonical_bytes() if unsigned is None else unsigned)
    except (IdentityError, InvalidSignature, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=4096)
def _public_key(peer_id: str) -> Ed25519PublicKey:
    """The key a peer id inlines, remembered: a sync verifies thousands of records by a few
    authors, and base58 decoding in Python cost ~14 us a record (failures are not cached)."""
    return Ed25519PublicKey.from_public_bytes(public_key_from_peer_id(peer_id))


def _replace(record: Record, update: dict[str, Any]) -> Record:
    """`model_copy(update=...)` without the source's cached id, which the update may change."""
    copy = record.model_copy(update=update)
    copy.__dict__.pop("_id_cache", None)
    return copy
