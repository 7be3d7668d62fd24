"""Keyword lists matched in one Aho-Corasick pass per normalisation, mapped back to raw spans.

Lists that share a combination of normalisations share one automaton over their normalised terms
and allowlisted phrases (ahocorasick_rs: a DFA, 4x faster than pyahocorasick with 1,000 terms).
A text is normalised (or, when no character in it could change a match, left as it is) and
scanned once; only when something matched are raw positions rebuilt, allowlists applied,
whole-word boundaries checked and the normalisations that made the match explained. Regular
expressions of a list run on the raw text.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ahocorasick_rs import AhoCorasick

from auditor.policies.model import KeywordList, PatternRule
from auditor.policies.normalize import Normalizer, is_wordish, normalizer, raw_index


@dataclass(frozen=True, slots=True)
class KeywordHit:
    """A match of a list's term (or regex) at `[start, end)` of the raw text, in code points."""

    keyword_list: KeywordList
    term: str
    normalized_term: str
    start: int
    end: int
    matched: str
    normalizations: tuple[str, ...]
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class _Entry:
    list_index: int
    term: str
    key: str
    allow: bool


class _Group:
    """The lists sharing one combination of normalisations, and their automaton."""

    def __init__(self, steps: tuple[str, ...], lists: Sequence[tuple[int, KeywordList]]) -> None:
        self.normalizer: Normalizer = normalizer(steps)
        self.lists = dict(lists)
        by_key: dict[str, dict[tuple[int, bool], _Entry]] = defaultdict(dict)
        for index, keyword_list in lists:
            for terms, allow in ((keyword_list.terms, False), (keyword_list.allow, True)):
                for term in terms:
                    key = self.normalizer.normalize(term.text)
                    by_key[key].setdefault((index, allow), _Entry(index, term.text, key, allow))
        self.relevant = _relevant_changes(self.normalizer, by_key)
        self.entries = [tuple(entries.values()) for entries in by_key.values()]
        self.automaton = AhoCorasick(list(by_key)) if by_key else None

    def allowed_spans(self, text: str, list_index: int) -> list[tuple[int, int]]:
        """Raw spans of the list's allowlisted phrases in `text` (for its regex matches)."""
        if self.automaton is None:
            return []
        found = self.automaton.find_matches_as_indexes(
            self.normalizer.normalize(text), overlapping=True
        )
        if not found:
            return []
        offsets = self.normalizer.offsets(text)
        return [
            (raw_index(offsets, start), raw_index(offsets, end - 1) + 1)
            for key, start, end in found
            for entry in self.entries[key]
            if entry.allow and entry.list_index == list_index
        ]

    def normalize(self, text: str) -> str:
        """The text the automaton reads: `text` itself when no change in it could matter."""
        if text.isascii() or self.relevant(text) is not None:
            return self.normalizer.normalize(text)
        return text

    def resolve(self, text: str, identical: bool, found: list) -> list[KeywordHit]:
        """The hits of an automaton pass over `text`, after allowlists and word boundaries.

        `identical` says the automaton read `text` itself, so offsets need no mapping.
        """
        allowed: dict[int, list[tuple[int, int]]] = defaultdict(list)
        spans: list[tuple[int, int, _Entry]] = []
        for key, start, end in found:
            for entry in self.entries[key]:
                if entry.allow:
                    allowed[entry.list_index].append((start, end))
                else:
                    spans.append((start, end, entry))
        offsets = None if identical else self.normalizer.offsets(text)
        kept: list[tuple[int, int, int, int, _Entry]] = []
        for start, end, entry in spans:
            if any(a <= start and end <= b for a, b in allowed.get(entry.list_index, ())):
                continue
            if offsets is None:
                raw_start, raw_end = start, end
            else:
                raw_start = raw_index(offsets, start)
                raw_end = raw_index(offsets, end - 1) + 1
            whole_words = self.lists[entry.list_index].whole_words
            if whole_words and _breaks_a_word(text, raw_start, raw_end, entry.key):
                continue
            kept.append((start, end, raw_start, raw_end, entry))
        hits = []
        for start, end, raw_start, raw_end, entry in kept:
            if any(
                other.list_index == entry.list_index
                and s <= start
                and end <= e
                and (s, e) != (start, end)
                for s, e, _, _, other in kept
            ):
                continue  # a shorter term inside a longer match of the same list
            matched = text[raw_start:raw_end]
            hits.append(
                KeywordHit(
                    self.lists[entry.list_index],
                    entry.term,
                    entry.key,
                    raw_start,
                    raw_end,
                    matched,
                    self.normalizer.explain(matched, entry.term),
                )
            )
        return hits


def _relevant_changes(normal: Normalizer, keys: Iterable[str]) -> Callable[[str], object]:
    """A search for characters whose normalisation could change what the automaton finds.

    A change matters when it deletes the character (a separator can split a term) or when the
    character or what it becomes occurs in some term. Any other change (`，` to `,` when no term
    holds a comma) can neither make nor break a match, so a text without a character that
    matters is scanned as it is, with no translation and raw offsets as they are. Characters
    beyond the Basic Multilingual Plane always count, since only the BMP is enumerated.
    """
    used = set("".join(keys))
    mattering = [
        char
        for char, piece in normal.changes().items()
        if not piece or char in used or not used.isdisjoint(piece)
    ]
    astral = "\U00010000-\U0010ffff"
    return re.compile(f"[{''.join(re.escape(char) for char in mattering)}{astral}]").search


def _breaks_a_word(text: str, start: int, end: int, key: str) -> bool:
    """Whether a term that begins or ends with a letter or digit is glued to a longer word."""
    if is_wordish(key[0]) and start > 0 and is_wordish(text[start - 1]):
        return True
    return is_wordish(key[-1]) and end < len(text) and is_wordish(text[end])


class KeywordMatcher:
    """Every keyword list of a policy, compiled once per run."""

    def __init__(self, lists: Sequence[KeywordList]) -> None:
        grouped: dict[tuple[str, ...], list[tuple[int, KeywordList]]] = defaultdict(list)
        for index, keyword_list in enumerate(lists):
            grouped[keyword_list.normalize].append((index, keyword_list))
        self._groups = [_Group(steps, members) for steps, members in grouped.items()]
        self._group_of = {index: group for group in self._groups for index in group.lists}
        self._automata = [  # what the hot loop needs, unpacked: `_Group.normalize` inlined
            (
                group.automaton,
                group.relevant,
                group.normalizer.table,
                *group.normalizer.ascii_tables,
                group,
            )
            for group in self._groups
            if group.automaton is not None
        ]
        self._searches = [
            (rule.regex.search, rule, index, keyword_list)
            for index, keyword_list in enumerate(lists)
            for rule in keyword_list.patterns
        ]

    def scan(self, text: str) -> list[KeywordHit]:
        hits: list[KeywordHit] = []
        for automaton, relevant, table, ascii_table, deleted, group in self._automata:
            if text.isascii():
                normalized = text.encode("ascii").translate(ascii_table, deleted).decode("ascii")
            elif relevant(text) is None:
                normalized = text
            else:
                normalized = text.translate(table)
            found = automaton.find_matches_as_indexes(normalized, overlapping=True)
            if found:
                hits.extend(group.resolve(text, normalized is text, found))
        for search, rule, index, keyword_list in self._searches:
            if search(text) is not None:
                hits.extend(self._pattern_hits(text, rule, index, keyword_list))
        return hits

    def _pattern_hits(
        self, text: str, rule: PatternRule, index: int, keyword_list: KeywordList
    ) -> list[KeywordHit]:
        hits = []
        allowed = self._group_of[index].allowed_spans(text, index)
        for match in rule.regex.finditer(text):
            start, end = match.span()
            if start == end or any(a <= start and end <= b for a, b in allowed):
                continue
            matched = match.group()
            hits.append(
                KeywordHit(keyword_list, rule.source, matched, start, end, matched, (), rule.source)
            )
        return hits
