"""The verifier's side of the key: loading Ed25519 public keys and naming each by fingerprint.

The public keys reach legal out of band; every check takes them as an argument and never trusts
a key found inside a bag. Legal holds one key per rotation, and a check takes them all: a bag
verifies when any of them signed it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.archive.untrusted import UnsafeFile, open_regular
from auditor.errors import ConfigError, os_reason

# A public key file is a few hundred bytes, an allowed_signers file a line per signer; the cap
# keeps `--pubkey /dev/zero` from filling the memory.
_MAX_KEY_FILE = 1 << 20

# What the verifier's functions take: one key, or every key legal holds across rotations.
PublicKeys = Ed25519PublicKey | Sequence[Ed25519PublicKey]


def ssh_blob(public_key: Ed25519PublicKey) -> bytes:
    """The SSH wire encoding (`string "ssh-ed25519" || string key`) that fingerprints hash."""
    line = public_key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return base64.b64decode(line.split()[1])


def openssh_line(public_key: Ed25519PublicKey) -> str:
    """`ssh-ed25519 AAAA...`, as in an authorized_keys or allowed_signers file."""
    return public_key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """`SHA256:<base64, no padding>`, exactly as `ssh-keygen -l` prints it."""
    digest = hashlib.sha256(ssh_blob(public_key)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def parse_public_keys(data: bytes, origin: str) -> list[Ed25519PublicKey]:
    """Every key of a public key file: PEM blocks (one, or several concatenated), or lines each
    holding an `ssh-ed25519` key (a bare key line, or allowed_signers with a line per key; blank
    and `#` lines skipped). A block or line without an Ed25519 key is refused by its number:
    after a key rotation the file holds several keys, and none may be dropped unseen."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        blocks = _PEM_BLOCK.findall(text)
        if not blocks:
            raise _not_a_key(origin, "no PEM public key")
        return [_pem_key(block, origin, number) for number, block in enumerate(blocks, 1)]
    lines = data.splitlines()
    keys = []
    for number, line in enumerate(lines, start=1):
        words = line.split()
        if not words or words[0].startswith(b"#"):
            continue
        if b"ssh-ed25519" not in words[:-1]:
            if len(lines) == 1:
                raise _not_a_key(origin, "no PEM public key and no ssh-ed25519 key")
            raise _not_a_key(f"{origin}:{number}", "no ssh-ed25519 key on this line")
        where = f"{origin}:{number}" if len(lines) > 1 else origin
        position = words.index(b"ssh-ed25519")
        try:
            key = serialization.load_ssh_public_key(b" ".join(words[position : position + 2]))
        except (ValueError, UnsupportedAlgorithm) as error:
            raise _not_a_key(where, str(error)) from None
        if not isinstance(key, Ed25519PublicKey):
            raise _not_a_key(where, "the ssh-ed25519 word is followed by another kind of key")
        keys.append(key)
    if not keys:
        raise _not_a_key(origin, "no key in it")
    return keys


_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.S)


def _pem_key(block: bytes, origin: str, number: int) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(block)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise _not_a_key(f"{origin} (key {number})" if number > 1 else origin, str(error)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{origin}: the public key is not Ed25519")
    return key


def _not_a_key(where: str, reason: str) -> ConfigError:
    return ConfigError(
        f"{where}: not an Ed25519 public key ({reason}); pass auditor-signing-key.pub.pem, "
        "its ssh-ed25519 line or the allowed_signers file that `auditor keygen` wrote"
    )


def load_public_keys(paths: Iterable[str | Path]) -> tuple[Ed25519PublicKey, ...]:
    """Every key in every file of `paths` (see `parse_public_keys`), each once, in order."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        for key in _read_keys(path):
            keys.setdefault(fingerprint(key), key)
    return tuple(keys.values())


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """The one key of the file at `path`; ConfigError when it holds several, never the first."""
    keys = _read_keys(path)
    if len(keys) > 1:
        raise ConfigError(f"{path}: holds {len(keys)} keys where one was expected")
    return keys[0]


def _read_keys(path: str | Path) -> list[Ed25519PublicKey]:
    """Reads `path` with `parse_public_keys`; ConfigError (exit 2) naming the file otherwise, and
    at once for a FIFO or device, which a plain open would wait on for ever."""
    try:
        with open_regular(path, follow_symlinks=True) as handle:
            data = handle.read(_MAX_KEY_FILE + 1)
    except UnsafeFile as error:
        raise ConfigError(f"{path}: {error}, so not a public key file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the public key ({os_reason(error)})") from None
    if len(data) > _MAX_KEY_FILE:
        raise ConfigError(
            f"{path}: larger than {_MAX_KEY_FILE:,} bytes, so not a public key file; pass "
            "auditor-signing-key.pub.pem, its ssh-ed25519 line or the allowed_signers file"
        )
    if b"PRIVATE KEY" in data:
        raise ConfigError(f"{path}: is a private key; give the public key (.pub.pem) instead")
    return parse_public_keys(data, str(path))


def key_tuple(keys: PublicKeys) -> tuple[Ed25519PublicKey, ...]:
    """`PublicKeys` as a tuple."""
    return (keys,) if isinstance(keys, Ed25519PublicKey) else tuple(keys)


def named(keys: Sequence[Ed25519PublicKey]) -> str:
    """The keys a check tried, for a problem line: `the given key SHA256:...` for one, `any
    given key (SHA256:..., SHA256:...)` for several."""
    if len(keys) == 1:
        return f"the given key {fingerprint(keys[0])}"
    return f"any given key ({', '.join(fingerprint(key) for key in keys)})"
