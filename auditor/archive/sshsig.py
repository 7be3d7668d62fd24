"""The SSHSIG format of OpenSSH (`ssh-keygen -Y sign/verify`, PROTOCOL.sshsig), for Ed25519.

Both halves of the format live here, building the blob a signer signs and checking an armored
signature, so neither the writer nor the verifier needs `ssh-keygen` at run time. The tests
check both directions against the real `ssh-keygen`.
"""

from __future__ import annotations

import base64
import hashlib
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.archive.publickey import PublicKeys, fingerprint, key_tuple, named, ssh_blob

MAGIC = b"SSHSIG"
VERSION = 1
HASH_ALGORITHM = "sha512"
KEY_TYPE = b"ssh-ed25519"
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"
_LINE_WIDTH = 70


class SshSigError(Exception):
    """An SSH signature that is malformed or does not verify; the message says which."""


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def signed_data(namespace: str, message: bytes, hash_algorithm: str = HASH_ALGORITHM) -> bytes:
    """What the key actually signs: the magic, the namespace and a hash of the message."""
    digest = hashlib.new(hash_algorithm, message).digest()
    return (
        MAGIC
        + _string(namespace.encode())
        + _string(b"")
        + _string(hash_algorithm.encode())
        + _string(digest)
    )


def armor(public_key: Ed25519PublicKey, namespace: str, signature: bytes) -> str:
    """The `-----BEGIN SSH SIGNATURE-----` text holding an Ed25519 signature of `signed_data`."""
    blob = (
        MAGIC
        + struct.pack(">I", VERSION)
        + _string(ssh_blob(public_key))
        + _string(namespace.encode())
        + _string(b"")
        + _string(HASH_ALGORITHM.encode())
        + _string(_string(KEY_TYPE) + _string(signature))
    )
    text = base64.b64encode(blob).decode()
    lines = [text[start : start + _LINE_WIDTH] for start in range(0, len(text), _LINE_WIDTH)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.position = data, 0

    def take(self, size: int) -> bytes:
        if self.position + size > len(self.data):
            raise SshSigError("the SSH signature is truncated")
        chunk = self.data[self.position : self.position + size]
        self.position += size
        return chunk

    def uint32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def string(self) -> bytes:
        return self.take(self.uint32())


def dearmor(text: str) -> bytes:
    """The signature's bytes, from text that `ssh-keygen -Y verify` reads too: it must begin with
    the BEGIN line and its LF (OpenSSH's "missing header" otherwise), so a copy with a blank line
    or CRLF line ends is refused here as there, not passed as intact."""
    if not text.startswith(BEGIN + "\n"):
        crlf = text.startswith(BEGIN + "\r\n")
        raise SshSigError(
            "ssh-keygen cannot read it: it must begin with the line " + BEGIN
            + (" and LF line ends (CRLF here: take a binary copy, or `sed -i 's/\\r$//' FILE`)"
               if crlf else "")
        )  # fmt: skip
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) < 3 or lines[0] != BEGIN or lines[-1] != END:
        raise SshSigError("not an armored SSH signature (BEGIN/END SSH SIGNATURE lines missing)")
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        raise SshSigError("the SSH signature is not valid base64") from None


def verify(text: str, message: bytes, public_keys: PublicKeys, namespace: str) -> Ed25519PublicKey:
    """The key of `public_keys` whose SSHSIG of `message` in `namespace` `text` is; raises
    SshSigError otherwise. The signature names its key, so only that one is tried."""
    keys = key_tuple(public_keys)
    reader = _Reader(dearmor(text))
    if reader.take(6) != MAGIC or reader.uint32() != VERSION:
        raise SshSigError("not an SSHSIG version 1 signature")
    signer_blob = reader.string()
    signed_namespace = reader.string()
    reader.string()  # reserved
    hash_algorithm = reader.string().decode(errors="replace")
    signature = _Reader(reader.string())
    if reader.position != len(reader.data):
        raise SshSigError("the SSH signature has trailing bytes")
    signer = next((key for key in keys if ssh_blob(key) == signer_blob), None)
    if signer is None:
        raise SshSigError(f"signed by another key ({_name(signer_blob)}), not {named(keys)}")
    if signed_namespace != namespace.encode():
        raise SshSigError(
            f"signed for namespace {signed_namespace.decode(errors='replace')!r}, "
            f"expected {namespace!r}"
        )
    if hash_algorithm not in ("sha256", "sha512"):
        raise SshSigError(f"unsupported hash algorithm {hash_algorithm!r}")
    if signature.string() != KEY_TYPE:
        raise SshSigError("not an ssh-ed25519 signature")
    raw = signature.string()
    try:
        signer.verify(raw, signed_data(namespace, message, hash_algorithm))
    except InvalidSignature:
        which = "" if len(keys) == 1 else f" {fingerprint(signer)} it names"
        raise SshSigError(f"the SSH signature does not verify with the given key{which}") from None
    return signer


def _name(blob: bytes) -> str:
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
