"""The policy a bag says its run applied, read from the bag alone.

A policy naming term files is only what it says with those files, and the live ones may have
changed since the run (a vendor's list is updated daily): everything that reloads a bag's
policy (`auditor report` of a bag, `state rebuild`) reads the copies the bag holds, each
checked against the digest its signed bag-info names.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from auditor.archive import layout
from auditor.archive.baginfo import check_bag_format, parse_bag_info
from auditor.archive.untrusted import TAG_FILE_LIMIT, read_bag_file
from auditor.errors import ConfigError
from auditor.operator_files import TEXT_FILE_LIMIT
from auditor.policies.loading import TermReader, policy_of_bytes
from auditor.policies.model import Policy
from auditor.policies.term_files import named_in_info


def bag_term_reader(bag: Path, info: dict[str, str]) -> TermReader:
    """Reads a term file from the bag's `data/policy/`, refusing one missing, or one whose
    SHA-256 is not the one bag-info names: verdicts must not be explained by another list."""
    named = named_in_info(info)

    def read(declared: str, archived: str) -> tuple[bytes, str]:
        raw = read_bag_file(Path(bag) / archived, TEXT_FILE_LIMIT)
        if raw is None:
            raise ConfigError(
                f"{archived}, the bag's copy of the term file {declared!r}, is missing"
            )
        if hashlib.sha256(raw).hexdigest() != named.get(archived):
            raise ConfigError(
                f"{archived} is not the term file bag-info.txt names (its SHA-256 differs, or "
                "bag-info names none); run `auditor verify` on the archive"
            )
        return raw, archived

    return read


def bag_copy_reader(policy_path: Path) -> TermReader | None:
    """`bag_term_reader` of the bag whose `data/policy.yaml` is `policy_path`; None for a policy
    file that is no bag's copy. A copy in a bag of a newer format is refused (InputError): its
    policy and term files may not mean to this version what they meant to the run."""
    if policy_path.name != Path(layout.POLICY).name or policy_path.parent.name != layout.DATA:
        return None
    bag = policy_path.parent.parent
    check_bag_format(bag, "take the policy from")
    raw = read_bag_file(bag / layout.BAG_INFO, TAG_FILE_LIMIT)
    if raw is None:
        return None
    info, _problems = parse_bag_info(raw, layout.BAG_INFO)
    return bag_term_reader(bag, info)


def policy_of_bag_copy(
    bag: Path, raw: bytes, info: dict[str, str], matchers: bool = True
) -> Policy:
    """The policy of the bag's `data/policy.yaml` (its bytes `raw`) with the bag's term files
    (`matchers` as `load_policy` takes it)."""
    return policy_of_bytes(layout.POLICY, raw, bag_term_reader(bag, info), matchers)


def load_bag_policy(bag: Path, info: dict[str, str], matchers: bool = True) -> Policy:
    """The policy a bag holds, with its term files; ConfigError when it holds none."""
    raw = read_bag_file(Path(bag) / layout.POLICY, TEXT_FILE_LIMIT)
    if raw is None:
        raise ConfigError(f"{bag}: holds no {layout.POLICY}")
    return policy_of_bag_copy(bag, raw, info, matchers)
