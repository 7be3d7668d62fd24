"""`auditor keygen`, `verify`, `verify-chain`, `prove`, `verify-proof`: keys, bags and proofs.

Verification exits 0 when everything holds and 1 with one line per problem (file and line) on
stdout; bad usage, a missing bag or an unreadable key exit 2.

Each command imports its part of `auditor.archive` (and so cryptography) when it begins: their
--help, and `due` and `state`, which share --pubkey, need none of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from auditor.archive.untrusted import shown
from auditor.cli.access import file_access_option
from auditor.errors import EXIT_FINDINGS

if TYPE_CHECKING:
    from auditor.archive.verify import BagReport

_PUBKEY = click.option(
    "--pubkey",
    "pubkeys",
    required=True,
    multiple=True,
    envvar="AUDITOR_PUBLIC_KEY",
    show_envvar=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The auditor's public key, received out of band (PEM, ssh-ed25519 line or "
    "allowed_signers, every line of it). Repeat it for each key used since a rotation: a bag "
    "verifies when any of them signed it. A key inside the bag is never used.",
)
_BAG = click.Path(file_okay=False, path_type=Path)


def _warn_of_keys_that_travel(pubkeys: tuple[Path, ...], archive: Path) -> None:
    """A key that sits in the folder of runs or inside a bag came with the archive, in the same
    zip or disk: whoever changed the archive could have signed it again and left their own
    key there, so its verdict proves nothing. Warned, not refused: the verdict still says which
    key signed, for legal to compare with the fingerprint it was given."""
    folder = archive.resolve()
    for key in pubkeys:
        place = key.resolve().parent
        if place == folder or folder in place.parents:
            click.echo(
                f"auditor: warning: {shown(key)} came with the archive (it lies in "
                f"{shown(archive)}): a key that travels with an archive proves nothing; verify "
                "with your own copy, received apart, whose fingerprint the operator gave you",
                err=True,
            )


def _fail_with(problems: list, summary: str) -> None:
    for problem in problems:
        click.echo(shown(problem))
    if problems and all(getattr(problem, "transit", False) for problem in problems):
        summary += (
            ", each one damage a copy did in transit (line ends converted, a signature copied "
            "as text, files an operating system added), none a change to what is signed: undo "
            "each as its line says and verify again"
        )
    click.echo(shown(summary), err=True)
    raise click.exceptions.Exit(EXIT_FINDINGS)


@click.command("keygen")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for auditor-signing-key.pem, auditor-signing-key.pub.pem, allowed_signers.",
)
@click.option(
    "--identity",
    default=None,
    help="Principal of the allowed_signers line.  [default: auditor@<this host>]",
)
@file_access_option()
def keygen(out_dir: Path, identity: str | None) -> None:
    """Create the Ed25519 key that signs every run's archive.

    The private key is encrypted when AUDITOR_KEY_PASSPHRASE (or a file named by
    AUDITOR_KEY_PASSPHRASE_FILE) holds a passphrase. Existing keys are never overwritten.
    Give legal the public key and its fingerprint, by another channel than the archives.
    """
    from auditor.archive.keys import PASSPHRASE_ENV, generate_key_files
    from auditor.fsutil import refuse_inside_any_bag

    refuse_inside_any_bag(out_dir, "keys")
    files = generate_key_files(out_dir, identity)
    state = "encrypted" if files.encrypted else "NOT encrypted: set " + PASSPHRASE_ENV
    click.echo(f"private key:     {files.private_key} (mode 0600, {state})")
    click.echo(f"public key:      {files.public_key}")
    click.echo(f"allowed_signers: {files.allowed_signers} (identity {files.identity})")
    click.echo(f"fingerprint:     {files.fingerprint}")


@click.command("verify")
@click.argument("bag", type=_BAG)
@_PUBKEY
@click.option(
    "--previous",
    type=_BAG,
    default=None,
    help="The run before this one: check the hash chain link and the sequence number.",
)
def verify(bag: Path, pubkeys: tuple[Path, ...], previous: Path | None) -> None:
    """Check a run's bag: signatures, checksums, files, every line, Merkle root, chain link.

    Exits 0 when the bag is intact, 1 with one line per problem, 2 when the bag or a key cannot
    be read.
    """
    from auditor.archive.publickey import load_public_keys
    from auditor.archive.verify import verify_bag

    report = verify_bag(bag, load_public_keys(pubkeys), previous)
    _warn_of_keys_that_travel(pubkeys, bag.resolve().parent)
    if not report.ok:
        _fail_with(list(report.problems), f"{bag}: {len(report.problems)} problem(s) found")
    link = (
        f"; previous run {shown(previous)} signed by {report.previous_signer}"
        if previous is not None
        else ""
    )
    click.echo(
        f"{shown(bag)}: intact: run {report.sequence}, {report.record_count} records, "
        f"Merkle root {report.merkle_root}, signed by {report.signer}{link}"
    )
    if report.source:
        click.echo(f"{shown(bag)}: run {report.sequence} of {report.source}")
    _tell_hours_lost(shown(bag), report)


@click.command("verify-chain")
@click.argument("folder", type=_BAG)
@_PUBKEY
def verify_chain_command(folder: Path, pubkeys: tuple[Path, ...]) -> None:
    """Check every run in FOLDER and the chain they form: no gap, no repeat, every link.

    With several keys (--pubkey repeated, or an allowed_signers file of several lines) it says
    which key signed which runs: check that against what the operator told of each rotation.

    Exits 0 when the chain is intact, 1 with one line per problem, 2 when the folder or a key
    cannot be read.
    """
    from auditor.archive.chain import verify_chain
    from auditor.archive.publickey import load_public_keys

    report = verify_chain(folder, load_public_keys(pubkeys))
    _warn_of_keys_that_travel(pubkeys, folder)
    where = shown(folder)
    for name in report.unfinished:
        click.echo(f"{where}/{name}: unfinished run (never published), ignored", err=True)
    if report.hidden:
        click.echo(
            f"{where}: {len(report.hidden)} hidden folder(s) skipped: {', '.join(report.hidden)}",
            err=True,
        )
    if not report.ok:
        problems = report.all_problems()
        _fail_with(problems, f"{folder}: {len(problems)} problem(s) found")
    newest = max(report.bags, key=lambda bag: bag.sequence or 0)
    click.echo(
        f"{where}: intact chain of runs 1 to {newest.sequence}; the newest tagmanifest "
        f"SHA-256 is {newest.tagmanifest_sha256} (keep it elsewhere too)"
    )
    for first, last, signer in report.signers():
        runs = f"run {first}" if first == last else f"runs {first} to {last}"
        click.echo(f"{where}: {runs} signed by {signer}")
    for first, last, source in report.sources():
        runs = f"run {first}" if first == last else f"runs {first} to {last}"
        click.echo(f"{where}: {runs} of {source}")
    for bag in sorted(report.bags, key=lambda bag: bag.sequence or 0):
        _tell_hours_lost(f"{where}/{bag.path.name}", bag)


def _tell_hours_lost(where: str, bag: BagReport) -> None:
    """An intact chain can still miss hours the source had deleted before a run asked: its
    signed bag-info says so, and so must the verdict legal reads."""
    if bag.hours_lost:
        click.echo(
            f"{where}: run {bag.sequence} could not archive {bag.hours_lost}: the source no "
            "longer served them (see that run's report)"
        )


@click.command("prove")
@click.argument("bag", type=_BAG)
@click.argument("msg_id")
@click.option(
    "-o",
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the proof (JSON).",
)
@file_access_option()
def prove(bag: Path, msg_id: str, out: Path) -> None:
    """Write one message's inclusion proof: its line, audit path, root and signed manifest.

    Exits 0 when the proof is written, 2 when the bag cannot be read, holds no record with
    MSG_ID, or the proof cannot be written. It does not verify the bag: `auditor verify` does.
    """
    from auditor.archive.proof import write_proof

    proof = write_proof(bag, msg_id, out)
    click.echo(
        f"{shown(out)}: msg_id {shown(msg_id)} is leaf {proof['leaf_index']} of "
        f"{proof['tree_size']} in {shown(proof['bag'])} "
        f"({shown(proof['file'])}:{proof['line_number']})"
    )
    if proof["occurrences"] > 1:
        click.echo(
            f"note: msg_id {shown(msg_id)} occurs {proof['occurrences']} times; proved the first",
            err=True,
        )


@click.command("verify-proof")
@click.argument("proof_file", type=click.Path(dir_okay=False, path_type=Path))
@_PUBKEY
def verify_proof_command(proof_file: Path, pubkeys: tuple[Path, ...]) -> None:
    """Check an inclusion proof with the public key alone, without the rest of the archive.

    Exits 0 when the proof holds, 1 with one line per problem, 2 when the proof or a key
    cannot be read.
    """
    from auditor.archive.proof import load_proof, proved, verify_proof
    from auditor.archive.publickey import load_public_keys

    keys = load_public_keys(pubkeys)
    proof = load_proof(proof_file)
    problems = verify_proof(proof, keys, str(proof_file))
    if problems:
        _fail_with(problems, f"{proof_file}: the proof does not hold")
    facts = proved(proof, keys)  # only what the signature covers: never the proof's bag or file
    click.echo(
        f"{shown(proof_file)}: proved: leaf {proof['leaf_index']} of {proof['tree_size']} in "
        f"run {facts['run']}, root {proof['root']}, signed by {facts['signer']}; "
        f"msg_id {facts['msg_id']}"
    )
    if facts["source"]:
        click.echo(f"{shown(proof_file)}: {facts['run']} of {facts['source']}")


COMMANDS: list[click.Command] = [
    keygen,
    verify,
    verify_chain_command,
    prove,
    verify_proof_command,
]
