"""The verify instructions legal copies: README's stock-tool block and a bag's data/VERIFY.txt
run as written (probe 17), with a key whose principal is not README's example."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
from test_archive_support import build_bag, build_chain, make_keys, run

from auditor.archive import layout

README = (Path(__file__).parent.parent / "README.md").read_text()
# Where README has legal keep its own copies of the public keys.
README_KEYS = "~/auditor-keys"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("legal-keys"), "compliance-bot@eu-west")


@pytest.fixture(scope="module")
def series(keys, tmp_path_factory):
    return build_chain(tmp_path_factory.mktemp("archive"), keys[1], messages=48)


def readme_stock_tool_block() -> str:
    """The shell block after "With stock tools" in "How legal verifies an archive"."""
    section = README[README.index("## How legal verifies an archive") :]
    after = section[section.index("With stock tools") :]
    return re.search(r"```sh\n(.*?)```", after, re.S)[1]


@pytest.mark.parametrize("tampered", [False, True], ids=["intact", "tag-manifest-edited"])
def test_readme_stock_tool_commands_as_written_pass_an_intact_bag_and_fail_a_tampered_one(
    series, keys, tmp_path, tampered
):
    block = readme_stock_tool_block()
    script = block.replace(README_KEYS, str(keys[0].public_key.parent))
    bag = shutil.copytree(series / "run-000002", tmp_path / "run-000002")
    if tampered:
        (bag / layout.TAGMANIFEST).write_text(
            (bag / layout.TAGMANIFEST).read_text().replace("  bagit.txt", "  ./bagit.txt")
        )

    result = run(["bash", "-euo", "pipefail", "-c", script], bag)

    assert block.count(README_KEYS) == 2
    assert (result.returncode == 0) is not tampered, result.stderr
    if not tampered:
        said = result.stdout.decode().splitlines()
        assert said[0] == "Signature Verified Successfully"
        assert said[1].startswith(
            'Good "easemob-auditor" signature for compliance-bot@eu-west with ED25519 key SHA256:'
        )


def test_readme_names_the_shells_its_stock_tool_block_runs_in():
    """The block uses `<(...)`, which `sh` (dash) refuses with a syntax error (probe31)."""
    section = README[README.index("## How legal verifies an archive") :]
    before = section[section.index("With stock tools") : section.index("```sh")]
    assert "bash or zsh" in " ".join(before.split())


def test_verify_txt_names_the_previous_run_and_its_commands_find_it(series):
    bag = series / "run-000002"
    text = (bag / layout.VERIFY_TXT).read_text()
    expected = hashlib.sha256((series / "run-000001" / layout.TAGMANIFEST).read_bytes()).hexdigest()

    (link,) = _commands(text, "echo")
    printed = run(["sh", "-c", link], bag)

    assert f"     echo '{expected}  ../run-000001/tagmanifest-sha256.txt' | sha256sum -c\n" in text
    assert '  auditor verify . --pubkey "$SIGNERS" --previous ../run-000001\n' in text
    assert printed.stdout.decode() == "../run-000001/tagmanifest-sha256.txt: OK\n"


def test_verify_txt_says_to_run_its_commands_in_the_folder_holding_bagit_txt(series):
    text = (series / "run-000001" / layout.VERIFY_TXT).read_text()

    assert (
        "Open bash or zsh (the\ncommands use <(...) and $'...', which sh lacks) in the bag's "
        "top folder, run-000001/, the one\nholding bagit.txt (this file is in its data/ folder), "
        "and set these two"
    ) in text
    assert "/usr/bin/openssl, which is LibreSSL" in text
    assert "--previous" not in text  # the first run of its chain links to nothing


def test_verify_txt_finds_a_previous_run_named_otherwise_and_keeps_a_placeholder_without_one(
    keys, tmp_path
):
    first = build_bag(tmp_path / "a", keys[1], "baseline", 1, messages=8)
    build_bag(tmp_path / "a", keys[1], "zz-later", 2, first.tagmanifest_sha256, messages=8)
    build_bag(tmp_path / "b", keys[1], "run-000002", 2, first.tagmanifest_sha256, messages=8)

    named = (tmp_path / "a" / "zz-later" / layout.VERIFY_TXT).read_text()
    alone = (tmp_path / "b" / "run-000002" / layout.VERIFY_TXT).read_text()

    assert "  ../baseline/tagmanifest-sha256.txt' | sha256sum -c\n" in named
    assert "  ../<previous run>/tagmanifest-sha256.txt' | sha256sum -c\n" in alone


def _commands(text: str, starting: str) -> list[str]:
    """The commands of VERIFY.txt that start with `starting`, continuation lines joined."""
    return [
        re.sub(r"\\\n\s*", "", block).strip()
        for block in re.findall(rf"^ {{5}}({starting} (?:.*\\\n)*.*)$", text, flags=re.M)
    ]


def test_legal_following_verify_txt_after_a_windows_copy_finds_the_crlf_and_undoes_it(
    series, keys, tmp_path
):
    bag = shutil.copytree(series / "run-000002", tmp_path / "run-000002")
    text = (bag / layout.VERIFY_TXT).read_text()
    converted = [
        *(layout.TAGMANIFEST, layout.SSH_SIGNATURE, layout.BAG_INFO),
        *(layout.MANIFEST, layout.VERIFY_TXT),
    ]  # a mail converts the SSH signature too: ssh-keygen then says "missing header"
    for name in converted:
        (bag / name).write_bytes((bag / name).read_bytes().replace(b"\n", b"\r\n"))
    env = {"PUBKEY": str(keys[0].public_key), "SIGNERS": str(keys[0].allowed_signers)}
    checks = [
        *_commands(text, "openssl"),
        *_commands(text, "ssh-keygen -Y verify"),
        *_commands(text, "sha256sum -c"),
    ]

    def shell(command):
        return run(["bash", "-c", command], bag, env=env)

    assert [shell(command).returncode != 0 for command in checks] == [True] * 4
    (count,) = _commands(text, "grep -c")
    counted = [
        line.rsplit(":", 1)[0]
        for line in shell(count).stdout.decode().splitlines()
        if not line.endswith(":0")
    ]
    (undo,) = re.findall(r"\(`(sed -i 's/\\r\$//') FILE`", text)
    for name in counted:
        assert shell(f"{undo} {name}").returncode == 0

    assert sorted(counted) == sorted(converted)
    assert [shell(command).returncode for command in checks] == [0] * 4
    (fingerprints,) = _commands(text, "ssh-keygen -lf")
    assert keys[0].fingerprint in shell(fingerprints).stdout.decode()


def test_legal_following_verify_txt_gets_back_a_signature_a_mail_client_reencoded(
    series, keys, tmp_path
):
    """With openssl alone, a binary signature copied as text failed with no hint; VERIFY.txt
    says how to see it (its size) and write its bytes back, and only the real ones verify."""
    bag = shutil.copytree(series / "run-000002", tmp_path / "run-000002")
    text = (bag / layout.VERIFY_TXT).read_text()
    signature = bag / layout.SIGNATURE
    original = signature.read_bytes()
    signature.write_bytes(original.decode("latin-1").encode("utf-8").replace(b"\n", b"\r\n"))
    env = {"PUBKEY": str(keys[0].public_key)}
    (openssl,) = _commands(text, "openssl")
    (size,) = _commands(text, "wc -c")
    (crlf,) = _commands(text, "perl")
    (recode,) = _commands(text, "iconv")

    def shell(command):
        return run(["bash", "-c", command], bag, env=env)

    assert shell(openssl).returncode != 0
    assert int(shell(size).stdout) > 64
    assert shell(recode).returncode == 0
    if b"\n" in original:  # then the LF bytes were written as CRLF too
        (bag / "recoded.bin").write_bytes((bag / "sig.bin").read_bytes())
        assert shell(crlf.replace(layout.SIGNATURE, "recoded.bin")).returncode == 0
    assert (bag / "sig.bin").read_bytes() == original
    assert (
        shell(openssl.replace(f"-sigfile {layout.SIGNATURE}", "-sigfile sig.bin")).returncode == 0
    )
