"""VERIFY.txt pasted, as written, into an interactive zsh: the shell a Mac opens (its default
since macOS 10.15), and the one VERIFY.txt names beside bash. An interactive zsh does not take
`#` as a comment (INTERACTIVE_COMMENTS is off), so a note after a command on the same line is run
as more words: `PUBKEY=... # note` ran a command named `#` with PUBKEY set for it alone, and every
later step read an empty PUBKEY."""

from __future__ import annotations

import re
import subprocess

import pytest
from test_archive_support import build_bag, make_keys

from auditor.archive import layout


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("legal-keys"))


@pytest.fixture(scope="module")
def bag(keys, tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    first = build_bag(root, keys[1], "run-000001", 1, messages=24)
    return build_bag(root, keys[1], "run-000002", 2, first.tagmanifest_sha256, messages=24).path


def pasted(bag, keys) -> str:
    """The key settings with legal's paths put in, then every command block, as a paste."""
    files = keys[0]
    text = (bag / layout.VERIFY_TXT).read_text()
    settings = re.findall(r"^ {2}((?:PUBKEY|SIGNERS)=.*)$", text, flags=re.M)
    assert len(settings) == 2
    paths = {"PUBKEY": files.public_key, "SIGNERS": files.allowed_signers}
    settings = [
        re.sub(r"=/path/to/\S+", f"={paths[line.split('=')[0]]}", line) for line in settings
    ]
    commands = re.findall(r"^ {5}\S.*\n(?: {6,}.*\n)*", text, flags=re.M)
    return "\n".join([*settings, *(command.rstrip("\n") for command in commands), "exit", ""])


def test_every_step_pasted_into_an_interactive_zsh_passes(bag, keys, tmp_path):
    result = subprocess.run(
        ["zsh", "-f", "-i"],
        input=pasted(bag, keys),
        cwd=bag,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = result.stdout + result.stderr

    assert "zsh:" not in out, out
    assert "Signature Verified Successfully" in out
    assert f"signature for {keys[0].identity} with ED25519 key {keys[0].fingerprint}" in out
    assert out.count(keys[0].fingerprint) == 3
    assert f"{layout.TAGMANIFEST}: OK" in out
    assert "all payload files OK" in out
    assert f"../run-000001/{layout.TAGMANIFEST}: OK" in out
