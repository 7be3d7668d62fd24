"""What a policy gives twice, for `auditor policy check`: copy-paste slips that load and run but
mean the author may have meant something else.

- a scope value given again (ids compared without regard to case, as scopes match them), or an
  id a glob of the same condition already covers: the second was perhaps meant to be another
  person or group, whom the rule or hold then misses;
- an id that is empty (`participant: ""`) or holds a space or an invisible character (a
  trailing space inside quotes, a zero-width space from a document), which no id Easemob writes
  does: that value covers no one;
- a term its list gives again once normalised (洗錢 is 洗钱, ＫＩＣＫ is kick): the matcher keeps
  the first, and findings name it;
- a term two lists give: each list reports the match, so one message has two findings, at each
  list's severity (no list wins);
- a pattern given again, in its list or another, and a detector used by two rules: each
  reports the match;
- a hold's reason copied from another hold, which then names the other matter in reports;
- two ids that differ only by case, which a reader of findings takes for one.

Each is a warning but a condition whose every id is so: it names no one, and the rule or hold
can never match (a conflict).
"""

from __future__ import annotations

import fnmatch
import unicodedata
from typing import Any

from auditor.policies.loading import FieldPath, located
from auditor.policies.model import KeywordList, PatternRule, Policy, Term
from auditor.policies.normalize import normalizer

Repeat = tuple[int, str, str, bool]
"""`(line, subject, message, warning)`."""
ID_KEYS = ("sender", "receiver", "group", "participant")
_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
FILE_REPEATS_NAMED = 5
"""Terms of one term file given twice that are named one a line; a vendor's list may hold
thousands (both forms of a word, 洗钱 and 洗錢), which are counted in one line after them."""


class PerFile:
    """What a list's term files give that is worth a line: the first `FILE_REPEATS_NAMED` of
    each file named, the rest counted in one line (a vendor's list may give thousands)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def names(self, file: str | None) -> bool:
        """Whether an item of `file` (None: of the policy itself) gets its own line."""
        if not file:
            return True
        self._counts[file] = count = self._counts.get(file, 0) + 1
        return count <= FILE_REPEATS_NAMED

    def rest(self, keyword_list: KeywordList, what: str) -> list[Repeat]:
        """One line a file for the items past those named, `what` saying what they are."""
        return [
            (
                keyword_list.line,
                keyword_list.id,
                f"{name}: {count - FILE_REPEATS_NAMED:,} more {what}, as the "
                f"{FILE_REPEATS_NAMED} above (only those are named)",
                True,
            )
            for name, count in self._counts.items()
            if count > FILE_REPEATS_NAMED
        ]


def repeats(policy: Policy) -> list[Repeat]:
    source = located(policy)
    data = source.data
    found: list[Repeat] = []
    places: list[tuple[FieldPath, str, dict[str, Any]]] = [
        (("retention", "rules", index), rule.id, each)
        for (index, each), rule in zip(
            enumerate((data.get("retention") or {}).get("rules", [])), policy.rules, strict=True
        )
    ]
    places += [
        (("holds", index), hold.id, each)
        for (index, each), hold in zip(enumerate(data.get("holds", [])), policy.holds, strict=True)
    ]
    for path, subject, each in places:
        for key, value in (each.get("scope") or {}).items():
            if key != "sent":
                found.extend(_scope_repeats(source, (*path, "scope", key), subject, value))
    found.extend(_reasons(policy))
    found.extend(_ids_by_case(policy))
    found.extend(_keyword_repeats(policy.keyword_lists))
    found.extend(_pattern_repeats(policy.keyword_lists))
    found.extend(_detector_repeats(policy))
    return found


def _pattern_repeats(lists: tuple[KeywordList, ...]) -> list[Repeat]:
    """A regular expression given again, in its list or another: each list reports its match."""
    first: dict[str, tuple[KeywordList, PatternRule]] = {}
    found: list[Repeat] = []
    for keyword_list in lists:
        for pattern in keyword_list.patterns:
            other, earlier = first.setdefault(pattern.source, (keyword_list, pattern))
            if earlier is pattern:
                continue
            line = earlier.line
            if other is keyword_list:
                message = f"pattern {pattern.source!r} is listed again (first line {line})"
                found.append((pattern.line, keyword_list.id, f"{message}: remove one", True))
                continue
            found.append(
                (
                    pattern.line,
                    keyword_list.id,
                    f"pattern {pattern.source!r} is also a pattern of list {other.id} (line "
                    f"{line}): neither wins, a match is reported twice, "
                    f"{_severities(keyword_list.severity, other)}: keep it in one list",
                    True,
                )
            )
    return found


def _detector_repeats(policy: Policy) -> list[Repeat]:
    """A detector used by two rules: each reports every match."""
    first: dict[str, Any] = {}
    found: list[Repeat] = []
    for rule in policy.detectors:
        other = first.setdefault(rule.detector, rule)
        if other is rule:
            continue
        found.append(
            (
                rule.line,
                rule.id,
                f"detector {rule.detector} is also used by rule {other.id} (line {other.line}): "
                f"neither wins, a match is reported twice, {_severities(rule.severity, other)}: "
                "keep one rule",
                True,
            )
        )
    return found


def _severities(mine: str, other: Any) -> str:
    """The severities of a match two rules report, this one's first."""
    if mine == other.severity:
        return f"at {mine} by both"
    return f"at {mine} by this one and at {other.severity} by {other.id}"


def _scope_repeats(source: Any, path: FieldPath, subject: str, value: Any) -> list[Repeat]:
    """The values of one scope condition given again, covered by a glob of it, or unmatchable."""
    key = str(path[-1])
    ids = key in ID_KEYS
    listed = value if isinstance(value, list) else [value]
    given = [
        (str(item), source.line((*path, index) if isinstance(value, list) else path))
        for index, item in enumerate(listed)
    ]
    field = f"scope.{key}"
    if ids and all(not _matchable(text) for text, _ in given):
        names = ", ".join(repr(text) for text, _ in given)
        return [
            (
                given[0][1],
                subject,
                f"can never match: {field} names no one ({names}: no id Easemob writes is empty "
                "or holds a space or an invisible character)",
                False,
            )
        ]
    found: list[Repeat] = []
    seen: dict[str, tuple[str, int]] = {}
    for text, line in given:
        if ids and not _matchable(text):
            what = "is empty" if not text else "holds a space or an invisible character"
            found.append(
                (
                    line,
                    subject,
                    f"{field} value {text!r} {what}, so it matches no id Easemob writes: remove it",
                    True,
                )
            )
            continue
        folded = text.lower() if ids else text
        if folded in seen:
            first, first_line = seen[folded]
            case = "; ids are compared without regard to case" if first != text else ""
            who = (
                "someone else was meant, name them" if ids else "something else was meant, name it"
            )
            found.append(
                (
                    line,
                    subject,
                    f"{field} names {text!r} again (line {first_line}{case}): if {who}",
                    True,
                )
            )
            continue
        seen[folded] = (text, line)
        if not ids or set(text) & set("*?["):
            continue
        glob = next(
            (
                (other, other_line)
                for other, other_line in given
                if set(other) & set("*?[") and fnmatch.fnmatchcase(folded, other.lower())
            ),
            None,
        )
        if glob is not None:
            found.append(
                (
                    line,
                    subject,
                    f"{field} names {text!r}, which {glob[0]!r} (line {glob[1]}) already "
                    "covers: if someone else was meant, name them",
                    True,
                )
            )
    return found


def _ids_by_case(policy: Policy) -> list[Repeat]:
    """Ids that differ only by case or width (Matter-1, matter-1): both are kept apart in
    findings, reports and `due`'s listings, where a reader takes them for one."""
    named = [
        *((policy.floor,) if policy.floor else ()),
        *policy.retention_rules(),
        *policy.holds,
        *policy.keyword_lists,
        *policy.detectors,
    ]
    first: dict[str, Any] = {}
    found: list[Repeat] = []
    for each in named:
        other = first.setdefault(unicodedata.normalize("NFKC", each.id).casefold(), each)
        if other is not each:
            found.append(
                (
                    each.line,
                    each.id,
                    f"its id differs from {other.id!r} (line {other.line}) only by case: "
                    "findings, reports and `due` keep them apart, a reader takes them for one; "
                    "rename one",
                    True,
                )
            )
    return found


def _matchable(text: str) -> bool:
    return bool(text) and not any(unicodedata.category(char) in _INVISIBLE for char in text)


def _reasons(policy: Policy) -> list[Repeat]:
    found = []
    first: dict[str, Any] = {}
    for hold in policy.holds:
        reason = " ".join(hold.reason.split()).casefold()
        if reason in first:
            other = first[reason]
            found.append(
                (
                    hold.line,
                    hold.id,
                    f"its reason is that of hold {other.id} (line {other.line}): if it is "
                    "another matter, say which",
                    True,
                )
            )
        else:
            first[reason] = hold
    return found


def _where(term: Term) -> str:
    return f"{term.file}:{term.line}" if term.file else f"line {term.line}"


def _line(keyword_list: KeywordList, term: Term) -> tuple[int, str]:
    """The policy file's line for a term, and the term file's place in words when from one."""
    return (keyword_list.line, f" ({term.file}:{term.line})") if term.file else (term.line, "")


def _keyword_repeats(lists: tuple[KeywordList, ...]) -> list[Repeat]:
    """Terms a list gives again, and terms a list before it gives too, as each list reads them
    (each term normalised once per combination of steps)."""
    memo: dict[tuple[str, ...], dict[str, str]] = {}

    def key(steps: tuple[str, ...], text: str) -> str:
        known = memo.setdefault(steps, {})
        found = known.get(text)
        if found is None:
            found = known[text] = normalizer(steps).normalize(text)
        return found

    found: list[Repeat] = []
    firsts: list[dict[str, Term]] = []
    for keyword_list in lists:
        first: dict[str, Term] = {}
        per_file = PerFile()
        for term in keyword_list.terms:
            mine = key(keyword_list.normalize, term.text)
            earlier = first.setdefault(mine, term)
            repeat = None
            if earlier is not term:
                repeat = _again(keyword_list, term, earlier)
            else:
                for other, theirs in zip(lists, firsts, strict=False):
                    same = theirs.get(key(other.normalize, term.text))
                    if same is not None and key(keyword_list.normalize, same.text) == mine:
                        repeat = _in_both(keyword_list, term, other, same)
                        break
            if repeat is not None and per_file.names(term.file):
                found.append(repeat)
        found.extend(per_file.rest(keyword_list, "of its terms are given twice"))
        firsts.append(first)
    return found


def _again(keyword_list: KeywordList, term: Term, earlier: Term) -> Repeat:
    line, where = _line(keyword_list, term)
    if earlier.text == term.text:
        message = f"term {term.text!r}{where} is listed again (first {_where(earlier)})"
    else:
        message = (
            f"term {term.text!r}{where} is {earlier.text!r} ({_where(earlier)}) again once "
            f"normalised; findings name {earlier.text!r}"
        )
    return line, keyword_list.id, f"{message}: remove one", True


def _in_both(keyword_list: KeywordList, term: Term, other: KeywordList, same: Term) -> Repeat:
    line, where = _line(keyword_list, term)
    also = (
        f"also a term of list {other.id} ({_where(same)})"
        if same.text == term.text
        else f"also term {same.text!r} of list {other.id} ({_where(same)}) once normalised"
    )
    severities = _severities(keyword_list.severity, other)
    return (
        line,
        keyword_list.id,
        f"term {term.text!r}{where} is {also}: neither wins, a match is reported twice, "
        f"{severities}: keep it in one list",
        True,
    )
