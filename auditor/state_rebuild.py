"""`auditor state rebuild`: a chain's state database made again from its bags.

A lost state database, or one restored from an old backup, used to leave only a new chain: the
next run refuses an out folder whose newest bag the state does not record. Every bag holds what
the state needs to continue the chain: its run number, window, the tagmanifest the next run links
to, and each archived record with the policy file the run applied and its reference time, from
which the message index (content hash, send time, retention, rule) is computed again exactly as
the run computed it; so are the messages it keeps verbatim in `data/unreadable/` (no RFC 8785
form: the lines its not-canonical-json findings name, `verbatim_kept`). Each bag is verified
first, and the chain they form, so a damaged or forged bag is never the base of the next run.

What the bags do not hold, and the rebuilt state therefore lacks:
- the digest of the run's settings (`config_digest`): stored as "rebuilt", so a run asked again
  for a window a rebuilt run audited audits it again instead of answering "already done";
- the chain's settled end (`settled_until_ms`): the next `--incremental` run fetches again the
  hours an older state would, `late_hours` back (at most once more each; what the index holds
  is skipped);
- which later runs saw a message again (`last_run`): the run that archived it.

Bags written before they kept the policy file (`data/policy.yaml`, from commit 13c81a1 on)
name it only by its Policy-SHA256: the operator gives that file with `--policy`, and it is used
for exactly the bags whose Policy-SHA256 is its SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from auditor import expected_head, state_verbatim
from auditor.archive import layout
from auditor.archive.baginfo import parse_bag_info
from auditor.archive.chain import verify_chain
from auditor.archive.lines import record_bytes
from auditor.archive.publickey import PublicKeys
from auditor.archive.untrusted import read_bag_file, record_files, shown
from auditor.errors import EXIT_FINDINGS, AuditorError, ConfigError, InputError
from auditor.operator_files import TEXT_FILE_LIMIT, read_operator_file
from auditor.partitions import Partition, parse_hour_timezone, parse_instant
from auditor.policies.in_bag import load_bag_policy
from auditor.policies.loading import policy_of_bytes
from auditor.policies.model import Policy, retention_actions
from auditor.policies.reading import glance
from auditor.policies.retention import RetentionDecider, held_later
from auditor.policies.term_files import applied_sha256_in_info
from auditor.records import msg_id
from auditor.sources.settle import content_sha256, entity_fields_of
from auditor.state import BAG_FOLDER_LOCK, GENESIS, State, StateLock
from auditor.state_index import VerdictIds, add_rows
from auditor.verbatim_kept import Judge, kept_in_bag

REBUILT_DIGEST = "rebuilt"


class ChainBroken(AuditorError):
    """The bags do not verify: nothing is rebuilt from them (exit 1, as `verify-chain`)."""

    exit_code = EXIT_FINDINGS


@dataclass(frozen=True, slots=True)
class RebuildOutcome:
    runs: int
    messages: int
    unidentified: int
    head_tagmanifest_sha256: str
    verbatim: int = 0
    """Messages the bags keep verbatim in `data/unreadable/` (no RFC 8785 form, no leaf)."""


def rebuild(
    out_dir: Path,
    state_path: Path,
    public_keys: PublicKeys,
    expect_head: str | None = None,
    policies: tuple[Path, ...] = (),
) -> RebuildOutcome:
    """Writes a state database at `state_path` (which must not exist) from the bags of
    `out_dir`, once all of them and their chain verify, and hold the run whose tagmanifest
    sha256 is `expect_head` when given (`HeadMismatch`, exit 1, otherwise); raises `InputError`
    (exit 2) naming the first problem otherwise. No run may publish meanwhile: see
    `_bag_folder_still`."""
    out_dir, state_path = Path(out_dir), Path(state_path)
    if state_path.exists():
        raise ConfigError(
            f"{state_path}: already exists; rebuild writes a new state database: give a path "
            "where none is (and replace the old one with it once done)"
        )
    given = _given_policies(policies)
    with _bag_folder_still(out_dir) as unchanged:
        numbered = _verified_bags(out_dir, public_keys)
        heads = {_tagmanifest_sha256(path): sequence for sequence, path in numbered}
        expected_head.check(expect_head, heads, numbered[-1][0], str(out_dir))
        bags = [path for _sequence, path in numbered]
        building = state_path.with_name(f".{state_path.name}.rebuilding")
        # a killed rebuild leaves these; SQLite writes a rollback journal before the log
        leftovers = [building] + [Path(f"{building}-{end}") for end in ("wal", "shm", "journal")]
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
        with StateLock(state_path):
            try:
                state = State(building)
                try:
                    outcome = _fill(state, bags, given)
                    state.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    state.close()
                unchanged()
                os.replace(building, state_path)
            finally:  # a failed rebuild (a full disk) leaves no half-made database behind
                for leftover in leftovers:
                    leftover.unlink(missing_ok=True)
    return outcome


@contextmanager
def _bag_folder_still(out_dir: Path) -> Iterator[Callable[[], None]]:
    """Keeps runs from publishing into `out_dir` while its bags are read, and yields the check
    to make before the state is published.

    Where this process may write the folder it takes the run lock every run takes, so no run
    publishes meanwhile and the check has nothing to find. Legal may rebuild from a copy it may
    only read (mounted read-only, or owned by another user): the lock cannot be taken there, yet
    the folder's owner, or another mount of it, may still publish. A run publishes by renaming
    its `.partial` folder to the bag's name, so the folder's entries are read before the bags
    are verified and again before the state is published: a rebuild that saw them change has
    read a chain that is no longer the folder's, and writes nothing."""
    if _may_lock(out_dir):
        with StateLock.of_bag_folder(out_dir):
            yield lambda: None
        return
    before = _entries(out_dir)

    def unchanged() -> None:
        if _entries(out_dir) != before:
            raise InputError(
                f"{out_dir}: its bags changed while they were read (a run published there?); "
                "nothing was written: rebuild again once no run writes there"
            )

    yield unchanged


def _may_lock(out_dir: Path) -> bool:
    """Whether this process may open the folder's lock file, or create it there."""
    lock = out_dir / BAG_FOLDER_LOCK
    return os.access(lock if lock.exists() else out_dir, os.W_OK)


def _entries(folder: Path) -> frozenset[str]:
    try:
        return frozenset(os.listdir(folder))
    except OSError:  # verify_chain names a folder it cannot list
        return frozenset()


def _verified_bags(out_dir: Path, public_keys: PublicKeys) -> list[tuple[int, Path]]:
    report = verify_chain(out_dir, public_keys)
    if not report.ok:
        problems = report.all_problems()
        raise ChainBroken(
            f"{out_dir}: the chain does not verify ({len(problems)} problem(s), first: "
            f"{shown(str(problems[0]))}); `auditor verify-chain` lists them; nothing was written"
        )
    # the bags verify-chain verified, whatever their folders' names: a folder only named like
    # a run (an empty `run-000009-x`) is none, and a renamed bag still is one
    bags = sorted((bag.sequence, bag.path) for bag in report.bags if bag.sequence is not None)
    if not bags:
        raise InputError(f"{out_dir}: no bag of a run there; nothing to rebuild from")
    return bags


def _tagmanifest_sha256(bag: Path) -> str:
    return hashlib.sha256((bag / layout.TAGMANIFEST).read_bytes()).hexdigest()


def _given_policies(paths: tuple[Path, ...]) -> dict[str, tuple[Path, bytes]]:
    """The `--policy` files by SHA-256, for bags that hold no copy of theirs."""
    return {hashlib.sha256(raw).hexdigest(): (path, raw) for path, raw in _read_all(paths)}


def _read_all(paths: tuple[Path, ...]) -> Iterator[tuple[Path, bytes]]:
    for path in paths:
        yield path, read_operator_file(path, "policy file")


def _bag_policy(bag: Path, info: dict[str, str], given: dict[str, tuple[Path, bytes]]) -> Policy:
    """The policy the bag's run applied: its own copy, or the given file its Policy-SHA256
    names when it holds none (ConfigError, exit 2, naming the digest, when none is given); its
    retention rules and holds alone, which are all the index takes of it (no matchers built)."""
    if read_bag_file(bag / layout.POLICY, TEXT_FILE_LIMIT) is not None:
        return load_bag_policy(bag, info, matchers=False)
    named = info.get("Policy-SHA256", "")
    if named not in given:
        raise ConfigError(
            f"{shown(bag)}: holds no {layout.POLICY} (a bag written before bags kept the policy "
            f"file): give the policy file it applied, whose SHA-256 is {shown(named) or '?'} "
            "(its Policy-SHA256), with --policy FILE"
        )
    path, raw = given[named]
    return policy_of_bytes(str(path), raw, matchers=False)


def _fill(state: State, bags: list[Path], given: dict[str, tuple[Path, bytes]]) -> RebuildOutcome:
    messages = unidentified = verbatim = 0
    head = GENESIS
    for bag in bags:
        info, _problems = parse_bag_info((bag / layout.BAG_INFO).read_bytes(), layout.BAG_INFO)
        head_before = head
        head = _tagmanifest_sha256(bag)
        sequence = int(info[layout.SEQUENCE])
        with state.transaction() as db:
            policy = _bag_policy(bag, info, given)
            added, anonymous = _index_bag(db, bag, info, sequence, policy)
            judge = Judge(policy, parse_instant(info["Policy-Reference-Time"]))
            verbatim += state_verbatim.add(db, sequence, kept_in_bag(bag, judge), VerdictIds(db))
            _add_run(db, bag, info, sequence, head, head_before)
        messages += added
        unidentified += anonymous
    return RebuildOutcome(len(bags), messages, unidentified, head, verbatim)


def _add_run(
    db: sqlite3.Connection, bag: Path, info: dict[str, str], sequence: int, head: str, prev: str
) -> None:
    reference = parse_instant(info["Policy-Reference-Time"])
    since, until = parse_instant(info["Window-Since"]), parse_instant(info["Window-Until"])
    relook = [parse_instant(info[label]) if label in info else None for label in _RELOOK]
    lost = info.get(layout.HOURS_LOST, "")
    outcome = {
        "rebuilt_from": bag.name,
        "records": int(info[layout.RECORD_COUNT]),
        "findings": int(info[layout.FINDINGS_COUNT]),
        "lost_hours": int(lost.split()[0]) if lost else 0,
    }
    db.execute(
        "INSERT INTO runs (sequence, status, since_ms, until_ms, started_at, finished_at,"
        " record_count, finding_count, tree_size, merkle_root, tagmanifest_sha256,"
        " previous_tagmanifest_sha256, bag_path, config_digest, outcome, relook_since_ms,"
        " relook_until_ms, policy_sha256) VALUES (?, 'completed', ?, ?, ?, NULL, ?, ?, ?, ?, ?,"
        " ?, ?, ?, ?, ?, ?, ?)",
        (
            sequence,
            since,
            until,
            reference,
            outcome["records"],
            outcome["findings"],
            int(info[layout.TREE_SIZE]),
            info[layout.MERKLE_ROOT],
            head,
            info.get(layout.PREVIOUS, prev),
            bag.name,
            REBUILT_DIGEST,
            json.dumps(outcome),
            *relook,
            applied_sha256_in_info(info),
        ),
    )


_RELOOK = ("Fetched-Again-Since", "Fetched-Again-Until")


def _index_bag(
    db: sqlite3.Connection, bag: Path, info: dict[str, str], sequence: int, policy: Policy
) -> tuple[int, int]:
    """Indexes the records of one bag as its run did: (msg_id, content) once, with the retention
    its policy gave at its reference time; returns (index rows added, records without msg_id)."""
    decide = RetentionDecider(policy, parse_instant(info["Policy-Reference-Time"])).decide_facts
    then = retention_actions(policy)
    zone = parse_hour_timezone(info.get("Hour-Timezone", "UTC"))
    entity_fields = entity_fields_of(info)
    anonymous: list[tuple[str]] = []
    added = 0

    def indexed() -> Iterator[tuple]:
        """The bag's index rows as its records are read: executemany takes them one by one, so
        a bag of millions of records is not held whole (at 100,000 records: 131 MB before)."""
        nonlocal added
        for path in record_files(bag):
            hour = _hour_of(path, zone)
            with path.open("rb") as lines:
                for line in lines:
                    line = line.rstrip(b"\n")
                    value = json.loads(line)
                    record = value["record"]
                    content = content_sha256(record, record_bytes(line), entity_fields)
                    identity = msg_id(record)
                    if identity is None:
                        anonymous.append((content,))
                        continue
                    facts, _texts = glance(record)
                    until, verdict = decide(facts)
                    rule = verdict.winning_rule
                    action = "hold" if verdict.disposition == "hold" else then.get(rule)
                    if verdict.later_hold is not None:
                        until, action, rule = held_later(verdict.later_hold, until)
                    added += 1
                    yield (
                        identity,
                        content,
                        facts[4],
                        until,
                        sequence,
                        sequence,
                        hour,
                        action,
                        rule,
                        value["seq"],
                    )

    add_rows(db, indexed())
    # counted as inserted: a later run whose window holds such a record archives it again
    new = db.executemany(
        f"INSERT OR IGNORE INTO unidentified (content_hash, first_run) VALUES (?, {sequence})",
        anonymous,
    ).rowcount
    return added, new


def _hour_of(path: Path, zone) -> int | None:
    """The hour whose file served a records file's messages, from its name (`YYYYMMDDHH`)."""
    try:
        return Partition.from_label(path.name.removesuffix(layout.RECORDS_SUFFIX), zone).start_ms
    except (ConfigError, ValueError):
        return None
