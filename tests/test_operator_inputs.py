"""Files the operator names (probe12): a FIFO, a device, a folder or a file past its cap is one
line naming the file and exit 2, never a hang or a MemoryError; a relative secret path is taken
from the config file's folder; keys in foreign formats, shared keys and odd identities are told
apart."""

from __future__ import annotations

import logging
import os
import socket

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor.apps import load_apps
from auditor.archive.keys import PASSPHRASE_ENV, PASSPHRASE_FILE_ENV, load_signing_key
from auditor.cli import main
from auditor.cli.run import DEFAULTS
from auditor.config import read_config
from auditor.errors import ConfigError, InputError
from auditor.operator_files import SECRET_FILE_LIMIT, TEXT_FILE_LIMIT
from auditor.resources import example_policy
from auditor.sources.settings import load_settings

SOURCE = "  base_url: https://a1.easemob.com\n  org: o\n  app: a\n  client_id: c\n"


pytestmark = pytest.mark.usefixtures("no_hang")
HANG_SECONDS = 5


@pytest.fixture(autouse=True)
def _no_secrets_from_the_environment(monkeypatch):
    for name in (PASSPHRASE_ENV, PASSPHRASE_FILE_ENV, "EASEMOB_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("EASEMOB_CLIENT_SECRET_FILE", raising=False)


def invoke(*arguments, env=None):
    return CliRunner().invoke(main, [str(argument) for argument in arguments], env=env)


def fifo(tmp_path, name="fifo"):
    path = tmp_path / name
    os.mkfifo(path)
    return path


def sparse(tmp_path, size, name="big"):
    path = tmp_path / name
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def assert_one_line(result, message):
    assert result.exit_code == 2, result.output
    assert result.output == f"auditor: error: {message}\n"


# The config file and the policy file

# What a config or policy file may not be, and how each is refused.
NOT_A_TEXT_FILE = pytest.mark.parametrize(
    ("make", "problem"),
    [
        (fifo, "is a FIFO, not a regular file"),
        (lambda tmp_path: "/dev/zero", "is a device, not a regular file"),
        (
            lambda tmp_path: sparse(tmp_path, TEXT_FILE_LIMIT + 1),
            f"is larger than the {TEXT_FILE_LIMIT:,} bytes such a file holds",
        ),
    ],
    ids=["fifo", "dev-zero", "past-the-cap"],
)


@NOT_A_TEXT_FILE
def test_a_config_that_is_no_regular_file_or_too_big_is_one_line(tmp_path, make, problem):
    path = make(tmp_path)

    result = invoke("run", "--config", path)

    assert_one_line(result, f"{path}: {problem}, so not a config file")


def test_a_folder_as_the_config_file_is_refused_naming_it(tmp_path):
    with pytest.raises(InputError, match=f"^{tmp_path}: is a folder, not a regular file, so not"):
        read_config(tmp_path)


@NOT_A_TEXT_FILE
def test_a_policy_file_that_is_no_regular_file_or_too_big_is_one_line(tmp_path, make, problem):
    path = make(tmp_path)

    result = invoke("policy", "check", path)

    assert_one_line(result, f"{path}: {problem}, so not a policy file")


@pytest.mark.parametrize(("char", "code"), [("\x00", "0000"), ("\x07", "0007")])
def test_a_character_yaml_refuses_in_a_policy_file_is_one_line_with_its_line(tmp_path, char, code):
    path = tmp_path / "policies.yaml"
    path.write_text(f'version: 1\nname: "a{char}b"\n', encoding="utf-8")

    result = invoke("policy", "check", path)

    assert_one_line(
        result,
        f"{path}:2: not valid YAML: unacceptable character #x{code}: special characters are "
        "not allowed",
    )


def test_a_nul_in_the_config_file_is_one_line_with_its_line(tmp_path):
    path = tmp_path / "auditor.yaml"
    path.write_text('source:\n  org: "a\x00b"\n', encoding="utf-8")

    result = invoke("run", "--config", path)

    assert_one_line(
        result,
        f"{path}:2: not valid YAML (unacceptable character #x0000: special characters are "
        "not allowed)",
    )


# The signing key, its passphrase and the public key


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (fifo, "is a FIFO, not a regular file"),
        (lambda tmp_path: "/dev/zero", "is a device, not a regular file"),
        (lambda tmp_path: tmp_path, "is a folder, not a regular file"),
        (
            lambda tmp_path: sparse(tmp_path, SECRET_FILE_LIMIT + 1),
            f"is larger than the {SECRET_FILE_LIMIT:,} bytes such a file holds",
        ),
    ],
    ids=["fifo", "dev-zero", "folder", "past-the-cap"],
)
def test_a_signing_key_that_is_no_regular_file_or_too_big_is_refused(tmp_path, make, problem):
    path = make(tmp_path)

    with pytest.raises(InputError) as refused:
        load_signing_key(path)

    assert str(refused.value) == f"{path}: {problem}, so not a signing key"


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (fifo, "is a FIFO, not a regular file"),
        (lambda tmp_path: "/dev/zero", "is a device, not a regular file"),
    ],
    ids=["fifo", "dev-zero"],
)
def test_a_passphrase_file_that_is_no_regular_file_stops_keygen_in_one_line(
    tmp_path, make, problem
):
    path = make(tmp_path)

    result = invoke("keygen", "--out", tmp_path / "keys", env={PASSPHRASE_FILE_ENV: str(path)})

    assert_one_line(
        result, f"{path}: {problem}, so not a key passphrase file named by {PASSPHRASE_FILE_ENV}"
    )
    assert not (tmp_path / "keys" / "auditor-signing-key.pem").exists()


def test_a_fifo_as_the_public_key_is_one_line_not_a_hang(tmp_path):
    path = fifo(tmp_path)

    result = invoke("verify", tmp_path, "--pubkey", path)

    assert_one_line(result, f"{path}: is a FIFO, not a regular file, so not a public key file")


def _pem(key, encoding_format, password=None):
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, encoding_format, encryption)


def test_a_key_encrypted_in_the_traditional_openssl_format_is_named_so(tmp_path):
    path = tmp_path / "rsa.pem"
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path.write_bytes(_pem(key, serialization.PrivateFormat.TraditionalOpenSSL, b"pass"))

    with pytest.raises(ConfigError) as refused:
        load_signing_key(path)

    assert str(refused.value) == (
        f"{path}: is a key encrypted in the traditional OpenSSL format, which holds no Ed25519 "
        "key; the auditor signs with an Ed25519 key in PKCS#8 PEM: create one with auditor keygen"
    )


def test_an_openssh_private_key_is_named_so(tmp_path):
    path = tmp_path / "id_ed25519"
    path.write_bytes(_pem(Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH))

    with pytest.raises(ConfigError) as refused:
        load_signing_key(path)

    assert str(refused.value) == (
        f"{path}: is an OpenSSH private key, which cannot sign here; the auditor signs with an "
        "Ed25519 key in PKCS#8 PEM: create one with auditor keygen"
    )


@pytest.mark.parametrize(("mode", "warned"), [(0o644, True), (0o640, True), (0o600, False)])
def test_a_signing_key_others_can_read_is_used_with_a_warning(tmp_path, caplog, mode, warned):
    path = tmp_path / "key.pem"
    path.write_bytes(_pem(Ed25519PrivateKey.generate(), serialization.PrivateFormat.PKCS8))
    path.chmod(mode)

    with caplog.at_level(logging.WARNING):
        assert isinstance(load_signing_key(path), Ed25519PrivateKey)

    expected = f"{path}: the signing key can be read by other users (mode {mode:04o}); chmod 600 it"
    assert [record.getMessage() for record in caplog.records] == ([expected] if warned else [])


@pytest.mark.parametrize("identity", ["a\x1b[31m", "auditor\x00x", "auditor\x7f", "a\u202eb"])
def test_keygen_refuses_an_identity_with_control_characters(tmp_path, identity):
    result = invoke("keygen", "--out", tmp_path / "keys", "--identity", identity)

    assert_one_line(
        result,
        f"identity {identity!r} must be one word of printable characters without commas or quotes",
    )
    assert not (tmp_path / "keys").exists()


# The client secret


def _secret_env(path):
    return {"EASEMOB_CLIENT_SECRET_FILE": str(path)}


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (fifo, "is a FIFO, not a regular file"),
        (lambda tmp_path: "/dev/zero", "is a device, not a regular file"),
        (lambda tmp_path: tmp_path, "is a folder, not a regular file"),
    ],
    ids=["fifo", "dev-zero", "folder"],
)
def test_a_secret_file_that_is_no_regular_file_is_refused(tmp_path, make, problem):
    path = make(tmp_path)
    config = tmp_path / "auditor.yaml"
    config.write_text("source:\n" + SOURCE)

    with pytest.raises(ConfigError) as refused:
        load_settings(config_file=config, environ=_secret_env(path))

    assert str(refused.value) == (
        f"{path}: {problem}, so not a client secret file named by EASEMOB_CLIENT_SECRET_FILE"
    )


def test_a_huge_secret_is_refused_before_any_request(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    secret = tmp_path / "secret"
    secret.write_bytes(b"s" * (SECRET_FILE_LIMIT + 1))
    config = tmp_path / "auditor.yaml"
    config.write_text(
        f"source:\n  base_url: http://127.0.0.1:{server.getsockname()[1]}\n  org: o\n  app: a\n"
        f"  client_id: c\n  client_secret_file: {secret}\n"
    )

    with server:
        result = invoke(
            "pull", "--config", config, "--since", "2026-11-01T00:00Z", "--until",
            "2026-11-01T01:00Z", "--out", tmp_path / "out", "--retries", "0", "--timeout", "1",
        )  # fmt: skip
        with pytest.raises(BlockingIOError):
            server.accept()

    assert_one_line(
        result,
        f"{secret}: is larger than the {SECRET_FILE_LIMIT:,} bytes such a file holds, so not a "
        f"client secret file named by source.client_secret_file in {config}",
    )


def test_a_relative_secret_file_is_taken_from_the_config_files_folder(tmp_path, monkeypatch):
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "secret").write_text("beside-the-config\n")
    config = folder / "auditor.yaml"
    config.write_text("source:\n" + SOURCE + "  client_secret_file: secret\n")
    monkeypatch.chdir(tmp_path)

    assert load_settings(config_file=config, environ={}).client_secret == "beside-the-config"


def _apps_config(folder, secret_file):
    config = folder / "auditor.yaml"
    config.write_text(
        f"run:\n  policies: {example_policy()}\n  key: key.pem\n  out: archive\n"
        "  state: state.db\napps:\n  - name: shop\n    source:\n"
        + "".join(f"    {line}\n" for line in SOURCE.splitlines())
        + f"      client_secret_file: {secret_file}\n"
    )
    return config


def test_an_apps_relative_secret_file_is_taken_from_the_config_files_folder(tmp_path, monkeypatch):
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "shop.secret").write_text("shop-secret\n")
    config = _apps_config(folder, "shop.secret")
    monkeypatch.chdir(tmp_path)

    plan = load_apps(config, {}, {}, DEFAULTS, environ={})

    assert plan.apps[0].settings.source.client_secret == "shop-secret"


def test_an_apps_secret_file_that_is_a_fifo_is_one_line_not_a_hang(tmp_path):
    path = fifo(tmp_path, "shop.secret")
    config = _apps_config(tmp_path, path)

    result = invoke("run", "--config", config)

    assert_one_line(
        result,
        f"{config}: apps[0]: {path}: is a FIFO, not a regular file, so not a client secret "
        f"file named by apps[0].source.client_secret_file in {config}",
    )


# The pace of hour files


@pytest.mark.parametrize("rate", ["1e-300", "0.001", "6001", "1e300"])
def test_a_pace_outside_its_range_is_one_line(tmp_path, rate):
    config = tmp_path / "auditor.yaml"
    config.write_text(f"source:\n{SOURCE}  hour_files_per_minute: {rate}\n")

    with pytest.raises(ConfigError) as refused:
        load_settings(config_file=config, environ={"EASEMOB_CLIENT_SECRET": "s"})

    assert str(refused.value) == (
        f"hour_files_per_minute must be 0 (unpaced) or from 0.01 to 6000, not {float(rate):g}"
    )


@pytest.mark.parametrize("rate", [0, 0.01, 10, 6000])
def test_a_pace_inside_its_range_or_none_is_kept(tmp_path, rate):
    config = tmp_path / "auditor.yaml"
    config.write_text(f"source:\n{SOURCE}  hour_files_per_minute: {rate}\n")

    settings = load_settings(config_file=config, environ={"EASEMOB_CLIENT_SECRET": "s"})

    assert settings.hour_file_rate == rate


# A secret put where its file's or variable's name belongs (probe 18 #2)

PUT_IN_THE_WRONG_PLACE = "YXA6wrong-place-S3CRET-xyz"


def _one_line_without_the_secret(result) -> str:
    assert result.exit_code == 2, result.output
    assert PUT_IN_THE_WRONG_PLACE not in result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("auditor: error: "), result.output
    return lines[0]


def test_a_secret_given_as_the_secret_files_name_is_not_printed(tmp_path):
    config = tmp_path / "auditor.yaml"
    config.write_text(f"source:\n{SOURCE}")
    result = invoke(
        "pull", "--config", config, "--since", "2026-11-01", "--until", "2026-11-01T01:00Z",
        "--out", tmp_path / "out",
        env={"EASEMOB_CLIENT_SECRET_FILE": PUT_IN_THE_WRONG_PLACE},
    )  # fmt: skip

    assert _one_line_without_the_secret(result).endswith(
        "no such client secret file named by EASEMOB_CLIENT_SECRET_FILE (its name is not "
        "shown, in case it is the secret itself)"
    )


def test_a_secret_given_as_the_configs_secret_file_is_not_printed(tmp_path):
    config = tmp_path / "auditor.yaml"
    config.write_text(f"source:\n{SOURCE}  client_secret_file: {PUT_IN_THE_WRONG_PLACE}\n")
    result = invoke(
        "pull", "--config", config, "--since", "2026-11-01", "--until", "2026-11-01T01:00Z",
        "--out", tmp_path / "out",
    )  # fmt: skip

    assert "no such client secret file named by source.client_secret_file" in (
        _one_line_without_the_secret(result)
    )


def test_a_passphrase_given_as_the_passphrase_files_name_is_not_printed(tmp_path):
    result = invoke("keygen", "--out", tmp_path, env={PASSPHRASE_FILE_ENV: PUT_IN_THE_WRONG_PLACE})

    assert "no such key passphrase file named by AUDITOR_KEY_PASSPHRASE_FILE" in (
        _one_line_without_the_secret(result)
    )


@pytest.mark.parametrize(
    ("name", "shown"), [(PUT_IN_THE_WRONG_PLACE, False), ("SHOP_CLIENT_SECRET", True)]
)
def test_an_apps_secret_variable_is_named_only_when_it_looks_like_a_name(tmp_path, name, shown):
    config = tmp_path / "auditor.yaml"
    config.write_text(
        f"run:\n  policies: {example_policy()}\n  key: key.pem\n  out: archive\n"
        "  state: state.db\napps:\n  - name: shop\n    source:\n"
        + "".join(f"    {line}\n" for line in SOURCE.splitlines())
        + f"      client_secret_env: {name}\n"
    )

    line = _one_line_without_the_secret(invoke("run", "--config", config))

    assert (f"names {name}, which is not set" in line) is shown


@pytest.mark.parametrize(("mode", "warned"), [(0o600, False), (0o644, True), (0o640, True)])
def test_a_client_secret_file_others_can_read_is_used_with_a_warning(
    tmp_path, caplog, mode, warned
):
    path = tmp_path / "client-secret"
    path.write_text("the-secret\n")
    path.chmod(mode)

    with caplog.at_level(logging.WARNING):
        settings = load_settings(
            {"base_url": "https://a1.easemob.com", "org": "o", "app": "a", "client_id": "c"},
            environ={"EASEMOB_CLIENT_SECRET_FILE": str(path)},
        )

    assert settings.client_secret == "the-secret"
    expected = (
        f"{path}: the client secret file named by EASEMOB_CLIENT_SECRET_FILE can be read by "
        f"other users (mode {mode:04o}); chmod 600 it"
    )
    assert [record.getMessage() for record in caplog.records] == ([expected] if warned else [])


@pytest.mark.parametrize("name", ["auditor-signing-key.pub.pem", "allowed_signers"])
def test_a_public_key_given_as_the_signing_key_is_named_so(tmp_path, caplog, name):
    """The two other files keygen writes are a likely slip for `--key`: said for what they are,
    without advice to chmod 600 a public file."""
    assert invoke("keygen", "--out", tmp_path).exit_code == 0
    path = tmp_path / name

    with caplog.at_level(logging.WARNING), pytest.raises(ConfigError) as refused:
        load_signing_key(path)

    assert str(refused.value) == (
        f"{path}: is a public key, which cannot sign; give the private key "
        "(auditor-signing-key.pem, which auditor keygen writes beside the public one)"
    )
    assert caplog.records == []
