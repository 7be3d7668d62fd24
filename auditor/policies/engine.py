"""The policy engine: one verdict and its findings per record, everything compiled once per run.

`PolicyEngine(policy, now_ms).evaluate(record)` is called on the hot path. Retention and hold
findings say why the record is over-retained, due for review or held; keyword and sensitive-data
findings carry the raw span of the original field text, so a reviewer can see exactly what matched,
one finding for each thing a text repeats (see `_repeats`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, Final, TypeVar

from auditor.findings import Finding
from auditor.partitions import format_instant
from auditor.policies.display import displayed_only
from auditor.policies.keywords import MAY_REORDER, NEEDLE, KeywordHit, KeywordMatcher
from auditor.policies.model import Policy
from auditor.policies.pii import PiiHit, PiiScanner
from auditor.policies.reading import glance, place_of, pointer_path
from auditor.policies.retention import RetentionDecider, RetentionVerdict
from auditor.records import Record, msg_id

Evaluation = tuple[int | None, RetentionVerdict, Sequence[Finding]]
"""`(retain_until_ms, verdict, findings)` for one record: a plain tuple, because building a
NamedTuple for the evaluation and another for the verdict of every record took 7 % of the
instructions of `evaluate`.
The verdict is shared between records (see `auditor.policies.retention`), and every record
without findings gets the same empty tuple."""

# `Final`: compiled code reads these as C constants or statics, not from the module's dict (a
# look-up of about 100 instructions, several a record).
MEMO_SIZE: Final = 32_768  # texts (~5 MB) and hits among them (~6.5 MB) in each of the two memos
CONTEXT_CHARS: Final = 200  # characters of a long text a finding keeps on each side of its match
SPANS_KEPT: Final = 100  # [start, end] pairs a finding of a repeated match lists
MEMO_TEXT_LIMIT: Final = 64  # characters of a text remembered whole
DECODED_MEMO_SIZE: Final = 2_048  # texts (4.3 MB at most) and hits among them, of decoded text
DECODED_TEXT_LIMIT: Final = 512  # characters of such a text (a shared link with percent-escapes)
BLIND_KEY_LIMIT: Final = 256  # UTF-8 bytes of a text remembered by its digit-blind key
_ZERO_DIGITS: Final = bytes.maketrans(b"123456789", b"000000000")
# The byte "0" as an int: `b"0" in raw` first reads its operand as an integer, and formats and
# clears a TypeError when it is not (~1,800 instructions); an int is one `memchr`.
_ZERO_BYTE: Final = 0x30
TextMatches = tuple[tuple[KeywordHit, ...], tuple[PiiHit, ...]]
"""The keyword and sensitive-data hits in one text."""
Hit = TypeVar("Hit", KeywordHit, PiiHit)
_NOTHING: Final[Any] = ((), ())
"""The matches of a text that matches nothing, one shared object compared by identity. It and
the memo's values are typed `Any` because compiled code (see setup.py) holds a value typed as a
fixed-length tuple unboxed and boxes it anew where an object is wanted, losing its identity."""


class PolicyEngine:
    """Applies a policy at the run's reference time `now_ms` (UTC ms) to one record at a time.

    What a text matches depends on the text alone, and short texts recur (push titles in `ext`,
    "收到", "ok", addresses, merged-message titles), so the matches of short texts are memoised,
    up to `memo_size` of them holding at most `memo_size` hits in all (0 turns it off, and the
    digit-blind memo of `_match` with it): a hit weighs about 200 bytes, so a memo bounded in
    texts alone grew with a keyword-heavy policy's hits a text (to ~60 MB at ten).
    findings are still built per record. A record is read without JSON Pointers (`glance`); its
    pointers are read again only when one of its texts matched something.
    """

    def __init__(self, policy: Policy, now_ms: int, memo_size: int = MEMO_SIZE) -> None:
        if not policy.matchers:  # it would match nothing, without a word
            raise ValueError(f"{policy.path}: loaded without its keyword lists and detectors")
        self.policy = policy
        self.memo_size = memo_size
        self.now_ms = now_ms
        self._retention = RetentionDecider(policy, now_ms)
        self._pii = PiiScanner(policy.detectors)
        self._keywords = KeywordMatcher(policy.keyword_lists, self._pii.needles)
        self._terms = self._keywords.terms
        self._decodes = self._keywords.decodes
        self._unmarks = self._keywords.unmarks
        self._candidates = self._pii.candidates
        self._may_reorder = MAY_REORDER  # an attribute: compiled code reads it unboxed
        blind = memo_size and self._keywords.digit_blind and self._pii.digit_blind
        self._blind: dict[bytes, tuple] | None = {} if blind else None
        self._severity = {rule.id: rule.severity for rule in policy.retention_rules()}
        if policy.floor is not None:
            self._severity[policy.floor.id] = policy.floor.severity
        self._holds = {hold.id: hold for hold in policy.holds}
        self._memo: dict[str, Any] = {}
        self._decoded: dict[str, Any] = {}
        self._memo_hits = 0  # the hits each memo holds, bounded as its texts are
        self._blind_hits = 0
        self._decoded_hits = 0

    def evaluate(self, record: Record) -> Evaluation:
        facts, texts = glance(record)
        until, verdict = self._retention.decide_facts(facts)
        findings: Sequence[Finding] = ()
        if verdict.disposition != "keep":
            findings = [self._retention_finding(record, until, verdict)]
        memo = self._memo
        matched = None
        for text in texts:
            found = memo.get(text)
            if found is None:
                found = self._match(text)
            if found is not _NOTHING:
                if matched is None:
                    matched = []
                matched.append((text, found))
        if matched is None:
            return until, verdict, findings
        listed = list(findings)
        for text, (keyword_hits, pii_hits) in matched:
            pointer, key = place_of(record, text)
            if len(keyword_hits) + len(pii_hits) < 2:
                listed.extend(_keyword_finding(record, pointer, key, text, h) for h in keyword_hits)
                listed.extend(_pii_finding(record, pointer, key, text, h) for h in pii_hits)
                continue
            for hits in _repeats(keyword_hits, _keyword_identity):
                listed.append(_keyword_finding(record, pointer, key, text, hits[0], hits))
            for hits in _repeats(pii_hits, _pii_identity):
                listed.append(_pii_finding(record, pointer, key, text, hits[0], hits))
        return until, verdict, listed

    def matches(self, text: str) -> TextMatches:
        """The keyword and sensitive-data hits in one text (memoised for short texts)."""
        found = self._memo.get(text)
        if found is not None:
            return found
        return self._match(text)

    def _match(self, text: str) -> Any:
        """`matches` for a text not in the memo.

        A text that differs from one seen before only in its ASCII digits (a file name with a
        counter, an amount, an order number) has the same term hits, needles and sensitive-data
        candidates (see `digit_blind`), so those are remembered by the text with its digits
        zeroed; only regexes and detectors that the text may trigger run on it. Such a text
        needs no place in the memo of whole texts unless one of those has to run, and a short
        text without ASCII digits, which that memo keeps, needs none in the digit-blind one.

        A text that may display in another order than it is stored (`MAY_REORDER` among the
        roles `terms` returns: a right-to-left letter or a bidi control, the same for texts that
        differ in their ASCII digits) is also scanned as displayed (`displayed_only`).
        """
        term_hits: Sequence[KeywordHit]
        blind = self._blind
        remember = self.memo_size and len(text) <= MEMO_TEXT_LIMIT
        if blind is not None:
            raw = text.encode("utf-8", "surrogatepass")
            key = raw.translate(_ZERO_DIGITS)  # `raw` itself when it holds no ASCII digit but 0
            entry = blind.get(key)
            if entry is None:
                term_hits, roles = self._terms(text)
                digits = key is not raw or _ZERO_BYTE in raw
                entry = (
                    tuple(term_hits),
                    roles,
                    self._candidates(text, roles & NEEDLE != 0, digits),
                )
                if len(key) <= BLIND_KEY_LIMIT and not (remember and key is raw):
                    self._blind_hits = _making_room(
                        blind, self._blind_hits, len(term_hits), self.memo_size
                    )
                    blind[key] = entry
            term_hits, roles, chosen = entry
            if key is not raw and roles <= NEEDLE and chosen is None:
                remember = False
        else:
            term_hits, roles = self._terms(text)
            chosen = self._candidates(text, roles & NEEDLE != 0)
        if (self._decodes and ("&" in text or "%" in text)) or (  # `escapes.may_hold_escapes`
            self._unmarks and ("<" in text or "[" in text)  # `escapes.may_hold_markup`
        ):
            term_hits = self._with_decoded(text, term_hits, remember)
        if roles > NEEDLE:
            term_hits = tuple(term_hits) + tuple(self._keywords.patterns(text, roles))
        pii_hits: Sequence[PiiHit] = self._pii.detect(text, chosen) if chosen is not None else ()
        if roles & self._may_reorder:
            shown_terms, shown_pii = displayed_only(
                text, self._keywords, self._pii, term_hits, pii_hits
            )
            term_hits = tuple(term_hits) + tuple(shown_terms)
            pii_hits = tuple(pii_hits) + tuple(shown_pii)
        found = (tuple(term_hits), tuple(pii_hits)) if term_hits or pii_hits else _NOTHING
        if remember:
            memo = self._memo
            self._memo_hits = _making_room(
                memo, self._memo_hits, len(term_hits) + len(pii_hits), self.memo_size
            )
            memo[text] = found
        return found

    def _with_decoded(self, text: str, term_hits: Sequence[KeywordHit], remember: Any) -> Any:
        """`term_hits` as the lists with the `decode` (or `markup`) step see them
        (`with_decoded`), remembered for a text the memo of whole texts does not keep: one too
        long for it, or one the digit-blind memo answers, whose escapes that memo cannot (their
        digits are the text). Decoding scans the text and, where it finds an escape, matches the
        decoded text again: 8 µs and more for a shared link, each time it was seen."""
        if remember or not self.memo_size or len(text) > DECODED_TEXT_LIMIT:
            return self._keywords.with_decoded(text, term_hits)
        decoded = self._decoded
        found = decoded.get(text)
        if found is None:
            found = tuple(self._keywords.with_decoded(text, term_hits))
            self._decoded_hits = _making_room(
                decoded, self._decoded_hits, len(found), DECODED_MEMO_SIZE
            )
            decoded[text] = found
        return found

    def _retention_finding(
        self, record: Record, until: int | None, verdict: RetentionVerdict
    ) -> Finding:
        details = {
            "rule": verdict.winning_rule,
            "disposition": verdict.disposition,
            "retain_until": format_instant(until) if until is not None else None,
            "retain_until_ms": until,
            "reason": verdict.reason,
            "losing_rules": [list(pair) for pair in verdict.losing_rules],
        }
        if verdict.disposition == "hold":
            hold = self._holds[verdict.winning_rule]
            details["hold_reason"] = hold.reason
            message = f"under legal hold {hold.id} since {format_instant(hold.starts_ms)}"
            return Finding(msg_id(record), "hold", hold.id, hold.severity, message, None, details)
        if until is None:
            return Finding(
                msg_id(record), "retention", "no-timestamp", "low", verdict.reason, "", details
            )
        severity = self._severity.get(verdict.winning_rule, "medium")
        if verdict.disposition == "dispose":
            message = (
                f"over-retention: retention ended {format_instant(until)} "
                f"({verdict.reason}) but the source still holds the record"
            )
        else:
            message = f"disposition review due since {format_instant(until)} ({verdict.reason})"
        return Finding(
            msg_id(record), "retention", verdict.winning_rule, severity, message, None, details
        )


def _repeats(hits: Sequence[Hit], identity: Callable[[Hit], Hashable]) -> list[list[Hit]]:
    """The hits of one text grouped by what they found, in the order of each group's first hit.

    One message of 5,000 characters of a repeated term made 555 identical findings, and 200
    such messages 111,000 findings and 87 MB of findings.jsonl; each group becomes one finding.
    """
    groups: dict[Hashable, list[Hit]] = {}
    for hit in hits:
        found = identity(hit)
        same = groups.get(found)
        if same is None:
            groups[found] = [hit]
        else:
            same.append(hit)
    return list(groups.values())


def _keyword_identity(hit: KeywordHit) -> Hashable:
    """Hits of the same list's same term (and pattern, for a regex) are the same thing."""
    return (hit.keyword_list.id, hit.normalized_term, hit.pattern)


def _pii_identity(hit: PiiHit) -> Hashable:
    """Detections by the same rule of the same value at the same severity are the same thing;
    two different numbers are two findings, since which numbers leaked matters."""
    return (hit.rule.id, hit.value, hit.severity)


def _times(hits: list[KeywordHit] | list[PiiHit] | None) -> str:
    """What a finding's message adds when its match recurs in the text."""
    return f" ({len(hits)} times)" if hits is not None and len(hits) > 1 else ""


def _add_occurrences(details: dict[str, Any], hits: list[KeywordHit] | list[PiiHit] | None) -> None:
    """How often a match recurs in its text and where, the first `SPANS_KEPT` places, so a
    finding stays bounded whatever the text repeats; nothing when it occurs once."""
    if hits is None or len(hits) < 2:
        return
    details["occurrences"] = len(hits)
    details["spans"] = [[hit.start, hit.end] for hit in hits[:SPANS_KEPT]]


def _normalised_note(steps: tuple[str, ...]) -> str:
    return f" (normalised: {', '.join(steps)})" if steps else ""


def _place(pointer: str, key: bool) -> str:
    """Where a text is, for a message: a key's pointer is that of its member."""
    return f"the key of {pointer_path(pointer)}" if key else pointer_path(pointer)


def _add_context(details: dict[str, Any], text: str, start: int, end: int) -> None:
    """The text a match was found in, as `details["text"]`: whole when it is short, else the
    match with `CONTEXT_CHARS` each side, where that excerpt starts in the text (`text_from`;
    `start` and `end` stay offsets into the whole text) and the whole text's length. Every match
    copied its text whole, so one pasted list of 2,800 addresses made 180 MB of findings; the
    archived record holds the text whole."""
    left = max(0, start - CONTEXT_CHARS)
    right = end + CONTEXT_CHARS
    if left == 0 and right >= len(text):
        details["text"] = text
        return
    details["text"] = text[left:right]
    details["text_from"] = left
    details["text_length"] = len(text)


def _keyword_finding(
    record: Record,
    pointer: str,
    key: bool,
    text: str,
    hit: KeywordHit,
    hits: list[KeywordHit] | None = None,
) -> Finding:
    """The finding of `hit`, the first of `hits` when the same match recurs in `text`."""
    keyword_list = hit.keyword_list
    where = f"{_place(pointer, key)}{_times(hits)}"
    if hit.pattern is not None:
        message = f"matched pattern {hit.pattern!r} with {hit.matched!r} in {where}"
    else:
        message = f"matched {hit.term!r}{_normalised_note(hit.normalizations)} in {where}"
    details = {
        "list": keyword_list.id,
        "term": hit.normalized_term,
        "listed_term": hit.term,
        "matched": hit.matched,
        "start": hit.start,
        "end": hit.end,
        "normalizations": list(hit.normalizations),
    }
    _add_context(details, text, hit.start, hit.end)
    if hit.pattern is not None:
        details["pattern"] = hit.pattern
    if hit.displayed is not None:
        details["displayed"] = hit.displayed
    if key:
        details["in_key"] = True
    _add_occurrences(details, hits)
    return Finding(
        msg_id(record), "keyword", keyword_list.id, keyword_list.severity, message, pointer, details
    )


def _pii_finding(
    record: Record,
    pointer: str,
    key: bool,
    text: str,
    hit: PiiHit,
    hits: list[PiiHit] | None = None,
) -> Finding:
    """The finding of `hit`, the first of `hits` when the same value recurs in `text`."""
    rule = hit.rule
    lowered = hit.severity != rule.severity
    rated = f", so {hit.severity} rather than {rule.severity}" if lowered else ""
    message = (
        f"{rule.detector} {hit.matched!r} ({hit.confidence} confidence{rated})"
        f"{_normalised_note(hit.normalizations)} in {_place(pointer, key)}{_times(hits)}"
    )
    details = {
        "detector": rule.detector,
        "term": hit.value,
        "matched": hit.matched,
        "start": hit.start,
        "end": hit.end,
        "normalizations": list(hit.normalizations),
        "confidence": hit.confidence,
    }
    _add_context(details, text, hit.start, hit.end)
    if lowered:
        details["severity_lowered_for"] = "low confidence"
        details["rule_severity"] = rule.severity
    if hit.displayed is not None:
        details["displayed"] = hit.displayed
    if key:
        details["in_key"] = True
    _add_occurrences(details, hits)
    return Finding(msg_id(record), "pii", rule.id, hit.severity, message, pointer, details)


def _making_room(memo: dict, held: int, hits: int, size: int) -> int:
    """The hits `memo` holds once an entry of `hits` more is stored, emptying it first where
    the entry would take it past `size` texts or `size` hits: bounded in both, its memory does
    not grow with a policy's hits a text."""
    if len(memo) >= size or held + hits > size:
        memo.clear()
        return hits
    return held + hits
