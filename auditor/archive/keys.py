"""The signer's side of the key: generating it, loading it, its passphrase, and the salt secret.

The private key is PKCS#8 PEM, mode 0600, encrypted when a passphrase is given through the
environment (`AUDITOR_KEY_PASSPHRASE`, or a file named by `AUDITOR_KEY_PASSPHRASE_FILE`); the
passphrase never travels on a command line and never reaches a log or an archive.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from auditor.archive.publickey import fingerprint, openssh_line, public_pem
from auditor.errors import ConfigError, os_reason
from auditor.fsutil import fsync_folders, make_folders
from auditor.operator_files import (
    SECRET_FILE_LIMIT,
    read_operator_file,
    read_secret_file_bytes,
    warn_if_others_can_read,
)

PASSPHRASE_ENV = "AUDITOR_KEY_PASSPHRASE"
PASSPHRASE_FILE_ENV = "AUDITOR_KEY_PASSPHRASE_FILE"
PRIVATE_KEY_FILE = "auditor-signing-key.pem"
PUBLIC_KEY_FILE = "auditor-signing-key.pub.pem"
ALLOWED_SIGNERS_FILE = "allowed_signers"
SALT_KEY_INFO = b"easemob-auditor/record-salt/v1"
_KEY_NEEDED = "the auditor signs with an Ed25519 key in PKCS#8 PEM: create one with auditor keygen"


@dataclass(frozen=True, slots=True)
class KeyFiles:
    """What `generate_key_files` wrote, and the fingerprint to hand to legal with the public key."""

    private_key: Path
    public_key: Path
    allowed_signers: Path
    identity: str
    fingerprint: str
    encrypted: bool


def passphrase_from_env() -> bytes | None:
    """The passphrase from `AUDITOR_KEY_PASSPHRASE` or the file `AUDITOR_KEY_PASSPHRASE_FILE`."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value.encode()
    name = os.environ.get(PASSPHRASE_FILE_ENV)
    if name:
        what = f"key passphrase file named by {PASSPHRASE_FILE_ENV}"
        data = read_secret_file_bytes(name, what).rstrip(b"\r\n")
        return data or None
    return None


def default_identity() -> str:
    return f"auditor@{socket.gethostname() or 'localhost'}"


def generate_key_files(out_dir: str | Path, identity: str | None = None) -> KeyFiles:
    """Writes a new Ed25519 key pair and its allowed_signers line; never overwrites (exit 2)."""
    out = Path(out_dir)
    identity = identity or default_identity()
    if not identity or any(_unfit_in_identity(char) for char in identity):
        raise ConfigError(
            f"identity {identity!r} must be one word of printable characters without commas "
            "or quotes"
        )
    paths = [out / PRIVATE_KEY_FILE, out / PUBLIC_KEY_FILE, out / ALLOWED_SIGNERS_FILE]
    existing = [str(path) for path in paths if path.exists()]
    if existing:
        raise ConfigError(
            f"{', '.join(existing)}: already exists; refusing to overwrite a signing key "
            "(move it away first)"
        )
    try:
        created = make_folders(out)
    except OSError as error:
        raise ConfigError(f"{out}: cannot create the key folder ({os_reason(error)})") from None
    key = Ed25519PrivateKey.generate()
    passphrase = passphrase_from_env()
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public = key.public_key()
    _write_new(paths[0], pem, 0o600)
    _write_new(paths[1], public_pem(public), 0o644)
    _write_new(paths[2], f"{identity} {openssh_line(public)}\n".encode(), 0o644)
    fsync_folders(created, filled=[out])
    return KeyFiles(*paths, identity, fingerprint(public), bool(passphrase))


def _unfit_in_identity(char: str) -> bool:
    """Whether `char` would split or corrupt the allowed_signers line, or act on the terminal
    of whoever reads it (an escape sequence)."""
    return char.isspace() or char in ',"' or not char.isprintable()


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise ConfigError(f"{path}: already exists; refusing to overwrite it") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot write ({os_reason(error)})") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def load_signing_key(path: str | Path) -> Ed25519PrivateKey:
    """The Ed25519 private key at `path`, decrypted with the passphrase from the environment.

    Raises ConfigError naming the file when it is not an Ed25519 PKCS#8 key, encrypted without a
    passphrase given, or the passphrase is wrong; InputError when it is missing, not a regular
    file or larger than a key.
    """
    data = read_operator_file(path, "signing key", SECRET_FILE_LIMIT)
    _refuse_foreign_format(path, data)
    warn_if_others_can_read(path, "the signing key")
    passphrase = passphrase_from_env()
    encrypted = b"ENCRYPTED PRIVATE KEY" in data
    if encrypted and not passphrase:
        raise ConfigError(
            f"{path}: the signing key is encrypted; set {PASSPHRASE_ENV} or {PASSPHRASE_FILE_ENV}"
        )
    try:
        key = serialization.load_pem_private_key(data, passphrase if encrypted else None)
    except (ValueError, TypeError):
        reason = "wrong passphrase" if encrypted else "not a PEM private key"
        raise ConfigError(f"{path}: cannot load the signing key ({reason})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: the signing key is not Ed25519; create one with auditor keygen")
    return key


def _refuse_foreign_format(path: str | Path, data: bytes) -> None:
    """Keys in formats the loader would only call "not a PEM private key", said for what they
    are. ssh-keygen cannot write an Ed25519 key as PKCS#8 (`-m PKCS8` keeps OpenSSH's format),
    so an OpenSSH key has no conversion to suggest."""
    if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
        raise ConfigError(
            f"{path}: is an OpenSSH private key, which cannot sign here; {_KEY_NEEDED}"
        )
    if b"-----BEGIN PUBLIC KEY-----" in data or _openssh_public(data):
        raise ConfigError(
            f"{path}: is a public key, which cannot sign; give the private key "
            "(auditor-signing-key.pem, which auditor keygen writes beside the public one)"
        )
    if b"Proc-Type: 4,ENCRYPTED" in data:
        raise ConfigError(
            f"{path}: is a key encrypted in the traditional OpenSSL format, which holds no "
            f"Ed25519 key; {_KEY_NEEDED}"
        )


def _openssh_public(data: bytes) -> bool:
    """Whether `data` is an OpenSSH public key line or an allowed_signers file, the other two
    files keygen writes beside the private key."""
    return b"ssh-ed25519" in data.split(maxsplit=2)[:2]


def derive_salt_key(key: Ed25519PrivateKey) -> bytes:
    """The secret that keys record salts: HKDF-SHA256 of the private key with a fixed label.

    Salts are then reproducible for the same key and record, yet unguessable to anyone holding
    only the public key and a proof.
    """
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SALT_KEY_INFO).derive(raw)
