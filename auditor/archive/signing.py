"""Signing the tag manifest: a raw Ed25519 signature for openssl and an SSHSIG for ssh-keygen."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor.archive import sshsig


@dataclass(frozen=True, slots=True)
class Signatures:
    """`raw`: 64 bytes (`openssl pkeyutl -verify -rawin`); `ssh`: armored SSHSIG text."""

    raw: bytes
    ssh: str


def sign(key: Ed25519PrivateKey, message: bytes, namespace: str) -> Signatures:
    """Both signatures of `message`; the SSHSIG one is bound to `namespace`."""
    raw = key.sign(message)
    ssh = key.sign(sshsig.signed_data(namespace, message))
    return Signatures(raw, sshsig.armor(key.public_key(), namespace, ssh))
