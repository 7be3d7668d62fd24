"""The verifier's side of the key: loading an Ed25519 public key and naming it by fingerprint.

The public key reaches legal out of band; every check takes it as an argument and never trusts a
key found inside a bag.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.archive.untrusted import UnsafeFile, open_regular
from auditor.errors import ConfigError

# A public key file is a few hundred bytes, an allowed_signers file a line per signer; the cap
# keeps `--pubkey /dev/zero` from filling the memory.
_MAX_KEY_FILE = 1 << 20


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


def parse_public_key(data: bytes, origin: str) -> Ed25519PublicKey:
    """A PEM public key, an OpenSSH `ssh-ed25519` line, or an allowed_signers line holding one."""
    text = data.strip()
    try:
        if text.startswith(b"-----BEGIN PUBLIC KEY-----"):
            key = serialization.load_pem_public_key(text)
        else:
            words = text.split()
            if b"ssh-ed25519" not in words or words.index(b"ssh-ed25519") + 1 >= len(words):
                raise ValueError("no PEM public key and no ssh-ed25519 key")
            position = words.index(b"ssh-ed25519")
            key = serialization.load_ssh_public_key(b" ".join(words[position : position + 2]))
    except (ValueError, UnsupportedAlgorithm) as error:
        raise ConfigError(
            f"{origin}: not an Ed25519 public key ({error}); pass auditor-signing-key.pub.pem, "
            "its ssh-ed25519 line or the allowed_signers file that `auditor keygen` wrote"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{origin}: the public key is not Ed25519")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """Reads `path` with `parse_public_key`; ConfigError (exit 2) naming the file otherwise, and
    at once for a FIFO or device, which a plain open would wait on for ever."""
    try:
        with open_regular(path, follow_symlinks=True) as handle:
            data = handle.read(_MAX_KEY_FILE + 1)
    except UnsafeFile as error:
        raise ConfigError(f"{path}: {error}, so not a public key file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the public key ({error.strerror})") from None
    if len(data) > _MAX_KEY_FILE:
        raise ConfigError(
            f"{path}: larger than {_MAX_KEY_FILE:,} bytes, so not a public key file; pass "
            "auditor-signing-key.pub.pem, its ssh-ed25519 line or the allowed_signers file"
        )
    if b"PRIVATE KEY" in data:
        raise ConfigError(f"{path}: is a private key; give the public key (.pub.pem) instead")
    return parse_public_key(data, str(path))
