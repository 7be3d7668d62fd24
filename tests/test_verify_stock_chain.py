"""VERIFY.txt's checks whose output legal must read right (probe 24): the payload check of a bag
that may list millions of files, the link to the previous run, and a run copied under another
folder name, which every signature and sha256sum check passes. Each is run as written, with
bash and stock tools alone, from the bag's folder."""

from __future__ import annotations

import re
import shutil

import pytest
from test_archive_support import (
    build_bag,
    build_chain,
    make_keys,
    openssl_verify,
    run,
    sha256sum_check,
)

from auditor.archive import layout


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("legal-keys"))


@pytest.fixture(scope="module")
def series(keys, tmp_path_factory):
    return build_chain(tmp_path_factory.mktemp("archive"), keys[1], messages=24)


@pytest.fixture
def archive(series, tmp_path):
    return shutil.copytree(series, tmp_path / "archive")


def command(bag, starting: str) -> str:
    """The one command of the bag's VERIFY.txt that starts with `starting`."""
    text = (bag / layout.VERIFY_TXT).read_text()
    (found,) = re.findall(rf"^ {{5}}({re.escape(starting)}(?:.*\\\n)*.*)$", text, flags=re.M)
    return re.sub(r"\\\n\s*", "", found)


def shell(bag, line: str):
    return run(["bash", "--noprofile", "--norc", "-c", line], bag, env={"PATH": "/usr/bin:/bin"})


def test_the_payload_check_ends_in_one_verdict_line_and_prints_only_a_failing_file(archive):
    bag = archive / "run-000002"
    check = command(bag, f"sha256sum -c --quiet {layout.MANIFEST}")

    intact = shell(bag, check)
    with (bag / layout.FINDINGS).open("ab") as findings:
        findings.write(b'{"note": "added"}\n')
    changed = shell(bag, check)

    assert (intact.returncode, intact.stdout) == (0, b"all payload files OK\n")
    assert (changed.returncode, changed.stdout) == (1, f"{layout.FINDINGS}: FAILED\n".encode())


def test_the_link_prints_ok_for_the_previous_run_and_failed_for_another_signed_run(archive, keys):
    bag = archive / "run-000002"
    link = command(bag, "echo ")

    linked = shell(bag, link)
    shutil.rmtree(archive / "run-000001")
    build_bag(archive, keys[1], "run-000001", 1, messages=24, seed=9)
    replaced = shell(bag, link)

    assert (linked.returncode, linked.stdout) == (0, b"../run-000001/tagmanifest-sha256.txt: OK\n")
    assert replaced.returncode == 1
    assert replaced.stdout == b"../run-000001/tagmanifest-sha256.txt: FAILED\n"


def test_a_run_copied_under_the_next_folder_name_passes_every_check_but_the_run_numbers(
    archive, keys
):
    copy = shutil.copytree(archive / "run-000002", archive / "run-000003")
    numbers = command(copy, "grep -h '^Run-Sequence:'")

    assert openssl_verify(copy, keys[0].public_key).returncode == 0
    assert sha256sum_check(copy, layout.MANIFEST).returncode == 0
    assert shell(copy, command(copy, "echo ")).returncode == 0
    assert shell(copy, numbers).stdout == b"Run-Sequence: 2\n"
    assert shell(archive / "run-000001", numbers).stdout == b"Run-Sequence: 2\n"
    shutil.rmtree(copy)
    assert shell(archive / "run-000001", numbers).stdout == b""


def test_the_fingerprint_of_the_pem_key_reads_as_ssh_keygen_prints_that_of_allowed_signers(
    series, keys, tmp_path
):
    """Step 0 ties the key openssl uses to the fingerprint the operator sent, as it does the
    allowed_signers file: ssh-keygen cannot read an Ed25519 PEM key."""
    bag = series / "run-000001"
    pem = command(bag, "{ printf")
    other = make_keys(tmp_path / "other")[0]

    def printed(key) -> str:
        result = run(
            ["bash", "--noprofile", "--norc", "-c", pem],
            bag,
            env={"PATH": "/usr/bin:/bin", "PUBKEY": str(key.public_key)},
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.decode()

    listed = run(["ssh-keygen", "-lf", str(keys[0].allowed_signers)], bag).stdout.decode()

    assert printed(keys[0]) == f"{keys[0].fingerprint}\n"
    assert listed.split()[1] == keys[0].fingerprint
    assert printed(other) == f"{other.fingerprint}\n" != printed(keys[0])
