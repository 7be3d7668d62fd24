"""The facts about one run that the report states beside its counts."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timezone

from auditor import __version__
from auditor.errors import ConfigError
from auditor.findings import FAIL_ON_LEVELS
from auditor.partitions import parse_timezone

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A run as its bag describes it: window (UTC ms), source, chain, signing key and policy.

    `source` holds `api`, `base_url`, `org` and `app`. `previous_tagmanifest_sha256` is 64 zeros
    for the first run of a chain. `verify_text` is the bag's `data/VERIFY.txt` when known; without
    it the report shows the text the archive writer puts there, from these fields.
    `reference_ms` is the instant retention and holds were judged at (the bag's
    `Policy-Reference-Time`), None when not known. `fetched_again_ms` is the hours before the
    window the run fetched a second time for records that reached the source late (the bag's
    `Fetched-Again-Since`/`-Until`), None when it fetched none. `previous_bag_name` is the
    folder beside the bag of the run it links to, which VERIFY.txt names, when it is there.
    """

    sequence: int
    since_ms: int
    until_ms: int
    source: Mapping[str, str] = field(default_factory=dict)
    hour_timezone: str = "UTC"
    merkle_root: str = ""
    tree_size: int = 0
    key_fingerprint: str = ""
    previous_tagmanifest_sha256: str = GENESIS
    policy_file: str = ""
    policy_sha256: str = ""
    tool_version: str = __version__
    generated_at: int = field(default_factory=lambda: int(time.time() * 1000))
    fail_on: str = "high"
    attachments: int = 0
    attachments_skipped: int = 0
    attachments_note: str = ""
    bag_name: str = ""
    previous_bag_name: str = ""
    archived_on: str = ""
    verify_text: str = ""
    signature_namespace: str = "easemob-auditor"
    reference_ms: int | None = None
    fetched_again_ms: tuple[int, int] | None = None
    # the values of bag-info's Policy-Term-File-N labels, for the VERIFY.txt the page shows
    term_files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.fail_on not in FAIL_ON_LEVELS:
            raise ConfigError(
                f"fail-on level {self.fail_on!r} is not one of {', '.join(FAIL_ON_LEVELS)}"
            )
        if self.until_ms < self.since_ms:
            raise ConfigError("the run's window ends before it starts")
        self.timezone()

    def timezone(self) -> timezone:
        """The zone the report shows times in: the source's hour-naming zone."""
        return parse_timezone(self.hour_timezone)

    @property
    def first_run(self) -> bool:
        return self.previous_tagmanifest_sha256 == GENESIS
