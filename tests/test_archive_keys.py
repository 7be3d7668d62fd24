"""Keys and signatures, checked against the real openssl and ssh-keygen."""

from __future__ import annotations

import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_archive_support import run

from auditor.archive import sshsig
from auditor.archive.keys import (
    PASSPHRASE_ENV,
    PASSPHRASE_FILE_ENV,
    derive_salt_key,
    generate_key_files,
    load_signing_key,
)
from auditor.archive.publickey import fingerprint, load_public_key, openssh_line
from auditor.archive.signing import sign
from auditor.errors import EXIT_USAGE, ConfigError, InputError

MESSAGE = b"0123abcd  bag-info.txt\n"


@pytest.fixture(autouse=True)
def _no_passphrase(monkeypatch):
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.delenv(PASSPHRASE_FILE_ENV, raising=False)


def test_keygen_writes_a_private_key_only_its_owner_reads_a_public_key_and_allowed_signers(
    tmp_path,
):
    files = generate_key_files(tmp_path / "keys", "auditor@legal-test")

    assert stat.S_IMODE(files.private_key.stat().st_mode) == 0o600
    assert files.private_key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    public = load_public_key(files.public_key)
    assert files.allowed_signers.read_text() == f"auditor@legal-test {openssh_line(public)}\n"
    assert files.fingerprint == fingerprint(public)
    assert not files.encrypted


def test_the_fingerprint_is_the_one_ssh_keygen_prints(tmp_path):
    files = generate_key_files(tmp_path, "auditor@test")
    (tmp_path / "key.pub").write_text(openssh_line(load_public_key(files.public_key)) + "\n")

    printed = run(["ssh-keygen", "-l", "-f", "key.pub"], tmp_path).stdout.decode()

    assert printed.split()[1] == files.fingerprint


def test_keygen_refuses_to_overwrite_an_existing_key(tmp_path):
    generate_key_files(tmp_path)
    before = (tmp_path / "auditor-signing-key.pem").read_bytes()

    with pytest.raises(ConfigError, match="already exists; refusing to overwrite") as raised:
        generate_key_files(tmp_path)

    assert raised.value.exit_code == EXIT_USAGE
    assert (tmp_path / "auditor-signing-key.pem").read_bytes() == before


def test_a_passphrase_from_the_environment_encrypts_the_key_and_is_needed_to_load_it(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")
    files = generate_key_files(tmp_path)
    pem = files.private_key.read_bytes()
    monkeypatch.delenv(PASSPHRASE_ENV)

    with pytest.raises(ConfigError, match=f"{files.private_key}: the signing key is encrypted"):
        load_signing_key(files.private_key)

    assert files.encrypted
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert b"correct horse" not in pem


def test_an_encrypted_key_loads_with_the_passphrase_from_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_ENV, "s3cret")
    files = generate_key_files(tmp_path / "keys")
    monkeypatch.delenv(PASSPHRASE_ENV)
    (tmp_path / "passphrase").write_text("s3cret\n")
    monkeypatch.setenv(PASSPHRASE_FILE_ENV, str(tmp_path / "passphrase"))

    key = load_signing_key(files.private_key)

    assert fingerprint(key.public_key()) == files.fingerprint


def test_a_wrong_passphrase_is_a_config_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_ENV, "right")
    files = generate_key_files(tmp_path)
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")

    with pytest.raises(ConfigError, match=f"{files.private_key}: .*wrong passphrase"):
        load_signing_key(files.private_key)


def test_a_key_that_is_not_ed25519_is_refused(tmp_path):
    path = tmp_path / "ec.pem"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    with pytest.raises(ConfigError, match=f"{path}: the signing key is not Ed25519"):
        load_signing_key(path)


def test_a_missing_key_file_is_an_input_error_naming_it(tmp_path):
    with pytest.raises(InputError) as raised:
        load_signing_key(tmp_path / "none.pem")

    assert str(raised.value) == f"{tmp_path / 'none.pem'}: no such signing key"
    assert raised.value.exit_code == EXIT_USAGE


def test_openssl_and_ssh_keygen_accept_the_signatures(tmp_path):
    files = generate_key_files(tmp_path, "auditor@test")
    key = load_signing_key(files.private_key)
    signatures = sign(key, MESSAGE, "easemob-auditor")
    (tmp_path / "message").write_bytes(MESSAGE)
    (tmp_path / "message.sig").write_bytes(signatures.raw)
    (tmp_path / "message.sshsig").write_text(signatures.ssh)

    openssl = run(
        [
            *("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(files.public_key)),
            *("-rawin", "-in", "message", "-sigfile", "message.sig"),
        ],
        tmp_path,
    )
    ssh = run(
        [
            *("ssh-keygen", "-Y", "verify", "-f", str(files.allowed_signers)),
            *("-I", "auditor@test", "-n", "easemob-auditor", "-s", "message.sshsig"),
        ],
        tmp_path,
        stdin=MESSAGE,
    )
    principals = run(
        [
            *("ssh-keygen", "-Y", "find-principals", "-f", str(files.allowed_signers)),
            *("-s", "message.sshsig"),
        ],
        tmp_path,
    )

    assert openssl.returncode == 0, openssl.stdout + openssl.stderr
    assert b"Signature Verified Successfully" in openssl.stdout
    assert ssh.returncode == 0, ssh.stderr
    assert b'Good "easemob-auditor" signature for auditor@test' in ssh.stdout
    assert principals.stdout.decode().strip() == "auditor@test"


def test_a_signature_made_by_ssh_keygen_verifies_here(tmp_path):
    key = Ed25519PrivateKey.generate()
    secret = tmp_path / "id_ed25519"
    secret.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    secret.chmod(0o600)
    (tmp_path / "message").write_bytes(MESSAGE)
    made = run(
        ["ssh-keygen", "-Y", "sign", "-f", str(secret), "-n", "easemob-auditor", "message"],
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    text = (tmp_path / "message.sig").read_text()

    sshsig.verify(text, MESSAGE, key.public_key(), "easemob-auditor")

    with pytest.raises(sshsig.SshSigError, match="expected 'other'"):
        sshsig.verify(text, MESSAGE, key.public_key(), "other")
    with pytest.raises(sshsig.SshSigError, match="does not verify"):
        sshsig.verify(text, MESSAGE + b"x", key.public_key(), "easemob-auditor")
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(sshsig.SshSigError, match=r"signed by another key .*not the given key"):
        sshsig.verify(text, MESSAGE, other, "easemob-auditor")


def test_the_salt_secret_is_stable_per_key_and_reveals_nothing_of_the_key():
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )

    salt_key = derive_salt_key(key)

    assert salt_key == derive_salt_key(key)
    assert salt_key != derive_salt_key(Ed25519PrivateKey.generate())
    assert len(salt_key) == 32 and salt_key != raw
