"""The policy file as frozen values: retention rules, legal holds, keyword lists, detector rules.

`auditor.policies.loading.load_policy` builds these from YAML; every stage after it reads
only these values. Each keeps the line it was defined on, for `auditor policy check` to cite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from auditor.policies.durations import Duration
from auditor.policies.scope import Scope
from auditor.policies.term_files import TermFile, applied_sha256

THEN_ACTIONS = ("keep", "review", "delete")


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """Keep matching records for `keep_for`, then `keep` them, `review` them or `delete` them.

    `kind` is `rule` (explicitly scoped), `default` (everything, implicitly) or `floor` (the
    statutory minimum: a retain-only rule that covers every record).
    """

    id: str
    kind: str
    keep_for: Duration
    then: str
    scope: Scope
    order: int
    line: int
    severity: str = "medium"
    description: str = ""


@dataclass(frozen=True, slots=True)
class Hold:
    """A legal hold: matching records are kept, whatever the rules say, while it is active."""

    id: str
    reason: str
    scope: Scope
    starts_ms: int
    ends_ms: int | None
    line: int
    severity: str = "info"

    def active_at(self, instant_ms: int) -> bool:
        return self.starts_ms <= instant_ms and (self.ends_ms is None or instant_ms < self.ends_ms)


@dataclass(frozen=True, slots=True)
class Term:
    """A term or allowlisted phrase as written, with its line for messages: of the policy file,
    or of `file` when a term file (`terms_file`, `allow_file`) gave it."""

    text: str
    line: int
    file: str = ""


@dataclass(frozen=True, slots=True)
class PatternRule:
    """A regular expression of a keyword list, matched against the raw text."""

    source: str
    regex: re.Pattern[str]
    line: int


@dataclass(frozen=True, slots=True)
class KeywordList:
    """Terms found with Aho-Corasick after normalisation, plus regexes, with their allowlist."""

    id: str
    severity: str
    terms: tuple[Term, ...]
    allow: tuple[Term, ...]
    patterns: tuple[PatternRule, ...]
    normalize: tuple[str, ...]
    whole_words: bool
    line: int
    description: str = ""


@dataclass(frozen=True, slots=True)
class DetectorRule:
    """One use of a sensitive-data detector: its severity, context words and allowlist.

    `low_confidence_severity` is that of a detection no context word confirms; None: one level
    below `severity` (a 16-digit order number passes the Luhn check one time in ten)."""

    id: str
    detector: str
    severity: str
    context_words: tuple[str, ...]
    context_within: int
    allow: tuple[str, ...]
    line: int
    low_confidence_severity: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """A loaded, validated policy file; `sha256` is of its bytes, for the archive's bag-info.

    `raw` is those bytes, as read once: the bag keeps exactly the file the digest names, even if
    it changes on disk during the run. `term_files` are the term files its keyword lists name,
    each with the bytes read once, for the bag to keep beside it. `matchers` is False for a
    policy loaded for its retention rules and holds alone (`load_policy(..., matchers=False)`),
    whose keyword lists and detectors were not built: no engine may apply it."""

    path: str
    sha256: str
    name: str
    floor: RetentionRule | None
    default: RetentionRule | None
    rules: tuple[RetentionRule, ...]
    holds: tuple[Hold, ...]
    keyword_lists: tuple[KeywordList, ...]
    detectors: tuple[DetectorRule, ...]
    floor_basis: str = ""
    description: str = ""
    raw: bytes = field(default=b"", repr=False, compare=False)
    term_files: tuple[TermFile, ...] = ()
    matchers: bool = True

    @property
    def applied_sha256(self) -> str:
        """The digest of the policy file and its term files: what a run applies, as one value
        (the file's own digest when it names no term file)."""
        return applied_sha256(self.sha256, self.term_files)

    def retention_rules(self) -> tuple[RetentionRule, ...]:
        """The default, then the scoped rules, in file order (the floor is separate)."""
        return ((self.default,) if self.default else ()) + self.rules


def retention_actions(policy: Policy) -> dict[str, str]:
    """What each retention rule of `policy` says once its period ends (`then`), by rule id: the
    message index keeps it beside each message, so `auditor due` answers without the policy."""
    rules = (*policy.retention_rules(), *((policy.floor,) if policy.floor else ()))
    return {rule.id: rule.then for rule in rules}
