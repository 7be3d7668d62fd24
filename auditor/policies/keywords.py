"""Keyword lists matched in one Aho-Corasick pass per normalisation, mapped back to raw spans.

Lists that share a combination of normalisations (`pinyin` aside, which changes no text but adds
spellings of a list's terms: see `pinyin`) share one automaton over their normalised terms
and allowlisted phrases (ahocorasick_rs: a DFA, 4x faster than pyahocorasick with 1,000 terms).
A text is normalised (or, when no character in it could change a match, left as it is) and
scanned once; only when something matched are raw positions rebuilt, allowlists applied,
whole-word boundaries checked and the normalisations that made the match explained. Regular
expressions of a list run on the raw text, or, in a list with `nfkc`, on it with its fullwidth
ASCII forms as ASCII (`fold_width`, one to one), written the same way (`width_folded`). Escapes
(`decode`) are read in a second pass over the decoded text, only for a text that holds them
(`with_decoded`).

The same pass also looks for needles: strings without which a regular expression (its longest
run of literal characters that match only themselves) or the caller's sensitive-data prefilter
cannot match. A normalisation maps each character on its own, so a text holding a needle `s`
normalises to one holding `normalize(s)`; the automaton looks for both, and a text with neither
skips the check the needle guards. Only the first automaton carries needles.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Final, NamedTuple

from ahocorasick_rs import AhoCorasick, Implementation

from auditor.policies.display import (
    REORDERING_BMP,
    may_reorder,
    right_to_left,
    without_surrogates,
)
from auditor.policies.escapes import Decoded, decoded, may_hold_escapes, may_hold_markup
from auditor.policies.gaps import breaks_words
from auditor.policies.model import KeywordList, PatternRule
from auditor.policies.names import is_name
from auditor.policies.normalize import (
    Normalizer,
    fold_width,
    is_separator,
    is_soft_separator,
    is_wordish,
    mostly_leet,
    normalizer,
    raw_index,
    width_folded,
)
from auditor.policies.pinyin import spellings_of

# ahocorasick_rs's DFA scans fastest up to a few thousand strings (1.10 against 1.38 µs a text
# with 1,000 CJK terms), but its tables grow with states times byte classes: with 50,000 terms it
# took 200 MB in every process and scanned slower than the contiguous NFA (9.2 against 3.7 µs),
# which needed 19 MB. The two cross near 2,500 strings here.
DFA_UP_TO = 2_500


def _automaton(strings: list[str]) -> AhoCorasick:
    kind = Implementation.DFA if len(strings) <= DFA_UP_TO else Implementation.ContiguousNFA
    return AhoCorasick(strings, implementation=kind)


class KeywordHit(NamedTuple):
    """A match of a list's term (or regex) at `[start, end)` of the raw text, in code points."""

    keyword_list: KeywordList
    term: str
    normalized_term: str
    start: int
    end: int
    matched: str
    normalizations: tuple[str, ...]
    pattern: str | None = None
    displayed: str | None = None
    """What a reader sees when the match was found in the displayed order (see `display`)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    """A term (or allowlisted phrase) of one list under its normalised key.

    `word_start`/`word_end`: the list matches whole words and the key begins/ends with a letter
    or digit, so a letter or digit just outside a match glues it to a longer word.
    `spelled`: the term's pinyin spelling (`xi qian`, `洗 qian`: see `pinyin`) that the
    key was made of, which the matcher reads in place of the term; empty for the term itself.
    """

    list_index: int
    term: str
    key: str
    allow: bool
    keyword_list: KeywordList
    word_start: bool
    word_end: bool
    spelled: str = ""

    @classmethod
    def of(cls, index: int, keyword_list: KeywordList, term: str, key: str, allow: bool) -> _Entry:
        whole = keyword_list.whole_words and bool(key)
        return cls(
            index,
            term,
            key,
            allow,
            keyword_list,
            whole and is_wordish(key[0]),
            whole and is_wordish(key[-1]),
        )

    @classmethod
    def spelling(cls, entry: _Entry, spelled: str) -> _Entry:
        """A pinyin spelling of the term of `entry`, a whole word of Latin letters in any list:
        `xiqian` is not in `taxiqianbao` nor in `xiqiang`."""
        return cls(
            entry.list_index,
            entry.term,
            entry.key,
            entry.allow,
            entry.keyword_list,
            is_wordish(spelled[0]),
            is_wordish(spelled[-1]),
            spelled,
        )


_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (hot path)


class _Group:
    """The lists sharing one combination of normalisations, and their automaton."""

    def __init__(
        self,
        steps: tuple[str, ...],
        lists: Sequence[tuple[int, KeywordList]],
        needles: dict[str, int] | None = None,
        watch: str = "",
        relevant_too: Iterable[str] = (),
    ) -> None:
        self.normalizer: Normalizer = normalizer(steps)
        self.lists = dict(lists)
        # A key's entries, the first for each (list, allow): a list, not a dict, since nearly
        # every key has one (a dict a key took 46 MB more at the peak for 200,000 terms, and
        # left that much behind between the entries kept).
        by_key: dict[str, list[_Entry]] = defaultdict(list)
        spelled: list[_Entry] = []  # with `pinyin`: the terms to spell, after every term
        for index, keyword_list in lists:
            spells = "pinyin" in keyword_list.normalize
            for terms, allow in ((keyword_list.terms, False), (keyword_list.allow, True)):
                for term in terms:
                    text = term.text
                    key = self.normalizer.normalize(text)
                    if key == text:
                        key = text  # one string, not two equal ones, for the term and its key
                    same = by_key[key]
                    if not any(each.list_index == index and each.allow == allow for each in same):
                        entry = _Entry.of(index, keyword_list, text, key, allow)
                        same.append(entry)
                        if spells:
                            spelled.append(entry)
        if spelled:
            self._add_spellings(by_key, spelled)
        self.relevant = _relevant_changes(self.normalizer, [*by_key, *relevant_too], watch)
        self.watches = bool(watch)  # `relevant` also finds the characters of `watch`
        self.entries = [tuple(entries) for entries in by_key.values()]
        # Needles follow the terms; `roles[index]` gives a pattern's roles (bits).
        needles = needles or {}
        self.roles = [_TERM] * len(by_key) + list(needles.values())
        self.entries += [()] * len(needles)
        self.sole_terms = [  # by key: its one entry when that is a term, else None
            each[0] if len(each) == 1 and not each[0].allow else None for each in self.entries
        ]
        self.strings = list(by_key) + list(needles)
        self.automaton = _automaton(self.strings) if self.strings else None
        self.joins_words = "separators" in self.normalizer.steps
        self.reads_leet = "leet" in self.normalizer.steps
        self.judges_gaps = self.joins_words or "confusables" in self.normalizer.steps

    def _add_spellings(self, by_key: dict[str, Any], entries: list[_Entry]) -> None:
        """The pinyin spellings of the terms of `entries` under their keys, but where the list
        has the key already (a term of its own, or another term's spelling: the first wins).

        A new key's entries are a tuple, which `entries` keeps as it is: a list each, then a
        tuple, took 130 MB more at the peak for 1,000,000 spellings. A spelling wholly in
        lower-case ASCII is its own key when the normalisation keeps those letters (one table
        for ASCII), which saved normalising 600,000 of them."""
        normalize = self.normalizer.normalize
        letters = "abcdefghijklmnopqrstuvwxyz"
        keeps_letters = normalize(letters) == letters
        for entry, spelled in zip(entries, spellings_of([e.key for e in entries]), strict=True):
            index, allow = entry.list_index, entry.allow
            for spelling in spelled:
                joined = spelling.replace(" ", "")
                key = joined if keeps_letters and joined.isascii() else normalize(joined)
                same = by_key.get(key)
                if not same:
                    by_key[key] = (_Entry.spelling(entry, spelling),)
                elif not any(e.list_index == index and e.allow == allow for e in same):
                    by_key[key] = (*same, _Entry.spelling(entry, spelling))

    def allowed_spans(self, text: str, list_index: int) -> list[tuple[int, int]]:
        """Raw spans of the list's allowlisted phrases in `text` (for its regex matches), each
        with the characters normalisation deleted on either side (`5%` of `not guaranteed 5%`:
        the phrase's key ends at `5`, the regex's match at `%`)."""
        if self.automaton is None:
            return []
        found = self.automaton.find_matches_as_indexes(
            without_surrogates(self.normalizer.normalize(text)), overlapping=True
        )
        if not found:
            return []
        offsets = self.normalizer.offsets(text)
        return [
            _widened(offsets, raw_index(offsets, start), raw_index(offsets, end - 1) + 1)
            for key, start, end in found
            for entry in self.entries[key]
            if entry.allow and entry.list_index == list_index
        ]

    def normalize(self, text: str) -> str:
        """The text the automaton reads: `text` itself when no change in it could matter."""
        if text.isascii() or self.relevant(text) is not None:
            return self.normalizer.normalize(text)
        return text

    def resolve(self, text: str, normalized: str, found: list) -> list[KeywordHit]:
        """The hits of an automaton pass over `normalized` (`text` itself when no change in it
        could matter, and then offsets need no mapping), after allowlists and word boundaries.

        Most texts with a hit hold one match of a key only one term has: no allowlisted phrase
        or other match can weigh against it, so it goes straight to its raw span.
        """
        if len(found) == 1:
            key, start, end = found[0]
            sole = self.sole_terms[key]
            if sole is not None:
                return self._hits(text, self._placed(text, normalized, [(start, end, sole)]))
        allowed: dict[int, list[tuple[int, int]]] = {}
        spans: list[tuple[int, int, _Entry]] = []
        for key, start, end in found:
            for entry in self.entries[key]:
                if entry.allow:
                    allowed.setdefault(entry.list_index, []).append((start, end))
                else:
                    spans.append((start, end, entry))
        if allowed:
            phrases = {index: _Covers(found) for index, found in allowed.items()}
            spans = [
                span
                for span in spans
                if (covers := phrases.get(span[2].list_index)) is None
                or not covers.contain(span[0], span[1])
            ]
        kept = self._placed(text, normalized, spans)
        if len(kept) > 1:
            by_list: dict[int, list[tuple[int, int]]] = defaultdict(list)
            for start, end, _, _, entry in kept:
                by_list[entry.list_index].append((start, end))
            longer = {index: _Covers(found) for index, found in by_list.items()}
            kept = [
                each
                for each in kept
                if not longer[each[4].list_index].contain(each[0], each[1], strictly=True)
            ]
        return self._hits(text, kept)

    def _placed(self, text: str, normalized: str, spans: list[tuple[int, int, _Entry]]) -> list:
        """The spans with their raw positions, but for matches glued to a longer word."""
        offsets = None if normalized is text or not spans else self.normalizer.offsets(text)
        kept = []
        for start, end, entry in spans:
            shape = entry.spelled or entry.term
            if offsets is None:
                raw_start, raw_end = start, end
            else:
                raw_start = raw_index(offsets, start)
                raw_end = raw_index(offsets, end - 1) + 1
            if _glued(text, raw_start, raw_end, entry):
                continue
            if entry.spelled and is_name(text, raw_start, raw_end):
                continue
            if (
                self.reads_leet
                and mostly_leet(text[raw_start:raw_end])
                and not mostly_leet(shape)  # a term such as `911` is numbers itself
            ):
                continue
            if (
                offsets is not None
                and self.judges_gaps
                and breaks_words(text, raw_start, raw_end, shape, bool(entry.spelled))
            ):
                continue
            if (
                offsets is not None
                and self.joins_words
                and (entry.word_start or entry.word_end)
                and self._joined_words(text[raw_start:raw_end], shape)
            ):
                continue
            kept.append((start, end, raw_start, raw_end, entry))
        return kept

    def _joined_words(self, matched: str, term: str) -> bool:
        """Whether removing separators made the match by joining whole words the term does not
        split there ("kick back" is no "kickback"), or words across a sentence ("off. The books").

        A space between letters spelled out one by one ("k i c k", "K.I.C.K back") is evasion and
        joins; symbols with no space between them ("kick-back", "kick.back", a zero-width space)
        join too; a space between two words joins only where the term has one, and not after a
        full stop.
        """
        words, gaps = _words(matched)
        if len(words) < 2:
            return False
        term_words, _ = _words(term)
        normalize = self.normalizer.normalize
        splits, at = set(), 0
        for word in term_words[:-1]:
            at += len(normalize(word))
            splits.add(at)
        at = 0
        for left, gap, right in zip(words, gaps, words[1:], strict=False):
            at += len(normalize(left))
            if not any(char.isspace() for char in gap):
                continue
            if not (is_wordish(left[-1]) and is_wordish(right[0])):
                continue
            if len(normalize(left)) == 1 or len(normalize(right)) == 1:
                continue
            if at not in splits or "." in gap or "\uff0e" in gap:
                return True
        return False

    def _hits(self, text: str, kept: list[tuple[int, int, int, int, _Entry]]) -> list[KeywordHit]:
        """A hit for each kept match, with the normalisations that made it match."""
        explain = self.normalizer.explain
        hits = []
        for _start, _end, raw_start, raw_end, entry in kept:
            matched = text[raw_start:raw_end]
            if entry.spelled:
                steps = (*explain(matched, entry.spelled.replace(" ", "")), "pinyin")
            else:
                steps = explain(matched, entry.term)
            hit = (
                entry.keyword_list,
                entry.term,
                entry.key,
                raw_start,
                raw_end,
                matched,
                steps,
                None,
                None,
            )
            hits.append(_new(KeywordHit, hit))
        return hits


def _text_steps(steps: tuple[str, ...]) -> tuple[str, ...]:
    """The steps that change a text: `pinyin` spells a list's terms and no text, so lists that
    differ in it alone share an automaton and its pass over each text (apart, a list naming it
    took a fifth more instructions a record)."""
    return tuple(step for step in steps if step != "pinyin")


def _runs_of(keyword_list: KeywordList) -> tuple[bool, bool]:
    """Which run steps (`decode`, `markup`) a list applies."""
    return "decode" in keyword_list.normalize, "markup" in keyword_list.normalize


def _widened(offsets: list[int], start: int, end: int) -> tuple[int, int]:
    """The raw span `[start, end)` with the deleted characters just before and after it."""
    while start > 0 and offsets[start - 1] == (offsets[start - 2] if start > 1 else 0):
        start -= 1
    while end < len(offsets) and offsets[end] == offsets[end - 1]:
        end += 1
    return start, end


def _words(text: str) -> tuple[list[str], list[str]]:
    """The runs of `text` between separators, and the separator runs between them."""
    words: list[str] = []
    gaps: list[str] = []
    current, gap = [], []
    for char in text:
        if is_separator(char):
            gap.append(char)
            continue
        if gap and current:
            words.append("".join(current))
            gaps.append("".join(gap))
            current = []
        gap = []
        current.append(char)
    if current:
        words.append("".join(current))
    return words, gaps


def _glued(text: str, start: int, end: int, entry: _Entry) -> bool:
    """Whether the match of a whole-word term at raw `[start, end)` is part of a longer word."""
    if entry.word_start and start > 0 and is_wordish(text[start - 1]):
        return True
    return entry.word_end and end < len(text) and is_wordish(text[end])


class _Covers:
    """Spans of one keyword list that may hold other spans (allowlisted phrases, longer
    matches), asked in O(log n) a span: a text with thousands of matches compared them pair by
    pair, 15 s for one 128,000-character message."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        spans.sort()
        self.starts = [start for start, _ in spans]
        # the furthest end of the spans sorted before each, and the longest span at each start
        self.reach = list(accumulate((end for _, end in spans), max))
        self.longest_at = {start: end for start, end in spans}

    def contain(self, start: int, end: int, strictly: bool = False) -> bool:
        """Whether a span holds `[start, end)`; with `strictly`, one other than itself."""
        before = bisect_left(self.starts, start)
        if before and self.reach[before - 1] >= end:
            return True
        longest = self.longest_at.get(start, -1)
        return longest > end or (longest == end and not strictly)


def _relevant_changes(
    normal: Normalizer, keys: Iterable[str], watch: str = ""
) -> Callable[[str], object]:
    """A search for characters whose normalisation could change what the automaton finds.

    A change matters when it deletes the character (a separator can split a term) or when the
    character or what it becomes occurs in some term; deleting punctuation or a symbol matters
    only right after such a character (`洗，钱`): elsewhere (`好的，收到`) it joins nothing a
    term holds. Any other change can neither make nor break a match, so a text without a
    character that matters is scanned as it is, with no translation and raw offsets as they are.
    Characters
    beyond the Basic Multilingual Plane always count, since only the BMP is enumerated, and
    so do the characters of `watch` (the inside of a regex class), which the caller asks about.
    """
    used = set("".join(keys))
    mattering, soft, keyed = [], [], set(used)
    for char, piece in normal.changes().items():
        if char in used or (piece and not used.isdisjoint(piece)):
            mattering.append(char)
            keyed.add(char)
        elif not piece:
            (soft if is_soft_separator(char) else mattering).append(char)
    astral = "\U00010000-\U0010ffff"
    changing = f"{_escaped(mattering)}{watch}{astral}"
    if not soft:
        return re.compile(f"[{changing}]").search
    # One class first, which the regex engine skips to at its fast scan's speed (a pattern
    # starting with an alternative is tried at every position, three times slower); then
    # punctuation counts only after a character that is (or becomes) a key's.
    deleted = _escaped(soft)
    return re.compile(
        f"[{changing}{deleted}](?:(?<=[{changing}])|(?<=[{_escaped(keyed)}][{deleted}]))"
    ).search


def _escaped(chars: Iterable[str]) -> str:
    return "".join(re.escape(char) for char in sorted(chars))


def required_literal(regex: re.Pattern[str]) -> str | None:
    """The longest run of characters every match of `regex` holds as they are, or None.

    Read from the parsed expression: consecutive literals at its top level (outside any group,
    repeat or alternative), each matching only itself (under IGNORECASE only ASCII non-letters
    do). None when there is no such run or the expression cannot be read this way.
    """
    try:
        # the stdlib's own parser; absent or changed, regexes just run
        from re import _parser  # type: ignore[attr-defined]

        parsed = _parser.parse(regex.pattern, regex.flags)
        literal_op = _parser.LITERAL
    except Exception:
        return None
    caseless = regex.flags & re.IGNORECASE
    best, run = "", ""
    for op, value in parsed.data:
        char = chr(value) if op is literal_op else None
        if char is not None and (not caseless or (char.isascii() and not char.isalpha())):
            run += char
            best = max(best, run, key=len)
        else:
            run = ""
    return best or None


def _gate(normal: Normalizer, wanted: dict[str, int]) -> tuple[dict[str, int], int]:
    """Each needle as written and as normalised, with its roles; and the roles that a needle
    normalisation deletes cannot guard (a text could hide it)."""
    gate: dict[str, int] = {}
    deleted = 0
    for needle, roles in wanted.items():
        seen = normal.normalize(needle)
        if not seen:
            deleted |= roles
            continue
        for each in (needle, seen):
            gate[each] = gate.get(each, 0) | roles
    return gate, deleted


ASCII_DIGITS = "0123456789"
NEEDLE: Final = 1  # the role of the caller's needles
_TERM: Final = 2  # the role of a term or allowlisted phrase
MAY_REORDER: Final = 4  # the text may display in another order than it is stored (`display`)
_FIRST_PATTERN: Final = 8  # the role of the list regex `k` is `_FIRST_PATTERN << k`


class KeywordMatcher:
    """Every keyword list of a policy, compiled once per run.

    `needles` are the caller's: `scan_noting` also says whether a text may hold one of them.
    `terms` and `patterns` split `scan_noting` in two for a caller that remembers the first:
    when `digit_blind` (no string the automata look for holds an ASCII digit, and normalisation
    keeps ASCII digits as they are), what `terms` returns is the same for texts that differ only
    in their ASCII digits: no term can match across a digit, and a digit next to a match is a
    letter or digit for the whole-word check whichever it is.

    `terms` also says (`MAY_REORDER`) whether a text may display in another order than it is
    stored (`display.may_reorder`), at no cost for a text without such a character: the first
    automaton's search for characters whose normalisation matters, which every non-ASCII text
    gets, looks for those too, and only a text it finds something in is asked again.
    """

    def __init__(self, lists: Sequence[KeywordList], needles: Iterable[str] = ()) -> None:
        grouped: dict[tuple[str, ...], list[tuple[int, KeywordList]]] = defaultdict(list)
        for index, keyword_list in enumerate(lists):
            grouped[_text_steps(keyword_list.normalize)].append((index, keyword_list))
        rules = [(index, each, rule) for index, each in enumerate(lists) for rule in each.patterns]
        # A list with `nfkc` runs its regexes on `fold_width`'s text, written the same way.
        self._searches = [
            (regex.search, rule, index, keyword_list, _FIRST_PATTERN << bit, regex)
            for bit, (index, keyword_list, rule) in enumerate(rules)
            for regex in [
                width_folded(rule.regex) if "nfkc" in keyword_list.normalize else rule.regex
            ]
        ]
        needles = tuple(needles)
        wanted: dict[str, int] = dict.fromkeys(needles, NEEDLE)
        self._ungated = 0 if needles else NEEDLE
        carrier = next(iter(grouped), None)
        carrier_folds = carrier is not None and normalizer(carrier).normalize("Ａ１") == (
            normalizer(carrier).normalize("A1")
        )
        # The needle of a regex that reads `fold_width`'s text may be spelt in fullwidth forms
        # (`ＡＢＣ` for `ABC`): the carrier normalises a text holding one, so that its automaton
        # sees the needle, when the carrier maps them to ASCII; else the regex runs ungated.
        folding: list[str] = []
        for _search, _rule, _index, keyword_list, bit, regex in self._searches:
            literal = required_literal(regex)
            if literal is not None and "nfkc" in keyword_list.normalize:
                if carrier_folds:
                    folding += (literal, normalizer(carrier).normalize(literal))
                else:
                    literal = None
            if literal is None:
                self._ungated |= bit
            else:
                wanted[literal] = wanted.get(literal, 0) | bit
        gate: dict[str, int] = {}
        if carrier is not None:
            gate, deleted = _gate(normalizer(carrier), wanted)
            self._ungated |= deleted
        if not gate:
            self._ungated |= NEEDLE | sum(each[4] for each in self._searches)
        self._groups = [
            # `relevant` finds every character beyond the BMP already: watching more there
            # (ranges it cannot merge) made its search a fifth slower
            _Group(
                steps,
                members,
                *((gate, REORDERING_BMP, folding) if steps == carrier else (None, "", ())),
            )
            for steps, members in grouped.items()
        ]
        self._group_of = {index: group for group in self._groups for index in group.lists}
        self._automata = [  # what the hot loop needs, unpacked: `_Group.normalize` inlined
            (
                group.automaton.find_matches_as_indexes,
                group.relevant,
                group.normalizer.translate,
                *group.normalizer.ascii_tables,
                group.watches,
                group,
            )
            for group in self._groups
            if group.automaton is not None
        ]
        if not any(each[-2] for each in self._automata):  # no automaton looks: ask every text
            self.terms = self._terms_asking  # type: ignore[method-assign]
        # The run steps' combinations the lists use, (decode, markup), each read in its own pass.
        self._runs = sorted(
            {_runs_of(each) for each in lists} - {(False, False)}, key=lambda runs: runs[::-1]
        )
        self.decodes = any(runs[0] for runs in self._runs)
        self.unmarks = any(runs[1] for runs in self._runs)
        self.right_to_left_terms = any(
            right_to_left(term.text) for each in lists for term in (*each.terms, *each.allow)
        )
        self.digit_blind = all(
            group.normalizer.normalize(ASCII_DIGITS) == ASCII_DIGITS
            and not any(char in ASCII_DIGITS for key in group.strings for char in key)
            for group in self._groups
        )

    def scan(self, text: str) -> list[KeywordHit]:
        return self.scan_noting(text)[0]

    def scan_noting(self, text: str) -> tuple[list[KeywordHit], bool]:
        """The hits in `text`, and whether it may hold one of the caller's needles."""
        hits, roles = self.terms(text)
        if (self.decodes and may_hold_escapes(text)) or (self.unmarks and may_hold_markup(text)):
            hits = self.with_decoded(text, hits)
        if roles > NEEDLE:
            hits = hits + self.patterns(text, roles)
        return hits, bool(roles & NEEDLE)

    def terms(self, text: str) -> tuple[list[KeywordHit], int]:
        """The hits of terms in `text`, and the roles of the needles it may hold (for
        `patterns`, and `NEEDLE` for the caller's), with `MAY_REORDER` when it may display in
        another order than it is stored."""
        hits: list[KeywordHit] = []
        roles = self._ungated
        for find, relevant, translate, ascii_table, deleted, watches, group in self._automata:
            if text.isascii():
                normalized = text.encode("ascii").translate(ascii_table, deleted).decode("ascii")
            elif relevant(text) is None:
                normalized = text
            else:
                normalized = translate(text)
                if watches and may_reorder(text) is not None:
                    roles |= MAY_REORDER
            try:
                found = find(normalized, overlapping=True)
            except UnicodeEncodeError:  # a lone surrogate, which the automaton's UTF-8 cannot hold
                found = find(without_surrogates(normalized), overlapping=True)
            if found:
                group_roles = group.roles
                seen = 0
                for key, _start, _end in found:
                    seen |= group_roles[key]
                roles |= seen & ~_TERM
                if seen & _TERM:
                    hits.extend(group.resolve(text, normalized, found))
        return hits, roles

    def with_decoded(self, text: str, hits: Sequence[KeywordHit]) -> Sequence[KeywordHit]:
        """`hits`, the `terms` of `text`, as the lists with the `decode` or `markup` step see
        them: when `text` holds escapes (or markup), those lists' hits are the ones found in it
        decoded (`escapes`), placed on the raw characters, with `decode` (`markup`) among their
        normalisations where a decoded escape (a tag read) is part of the match. Their raw hits
        go: the decoded text holds them too, unless an escape next to one makes it an
        allowlisted phrase or glues it to a word; but a hit inside a tag (an attribute, a link)
        stays, since reading the markup drops the tag."""
        for runs in self._runs:
            shown = decoded(text, *runs)
            if shown is not None:
                hits = self._placed_decoded(text, hits, shown, runs)
        return hits

    def _placed_decoded(
        self,
        text: str,
        hits: Sequence[KeywordHit],
        shown: Decoded,
        runs: tuple[bool, bool],
    ) -> list[KeywordHit]:
        """`hits` with those of the lists reading `runs` replaced by what `shown` holds."""
        found, _roles = KeywordMatcher.terms(self, shown.text)
        kept = [
            hit
            for hit in hits
            if _runs_of(hit.keyword_list) != runs
            or any(low <= hit.start and hit.end <= high for low, high in shown.markup)
        ]
        starts, ends = shown.starts, shown.ends
        for hit in found:
            if _runs_of(hit.keyword_list) != runs:
                continue
            start, end = starts[hit.start], ends[hit.end - 1]
            steps = hit.normalizations
            if any(low < end and start < high for low, high in shown.markup):
                steps = ("markup", *steps)
            if any(low < end and start < high for low, high in shown.escapes):
                steps = ("decode", *steps)
            kept.append(
                hit._replace(start=start, end=end, matched=text[start:end], normalizations=steps)
            )
        return kept

    def _terms_asking(self, text: str) -> tuple[list[KeywordHit], int]:
        """`terms` when no automaton's search looks for the characters `MAY_REORDER` needs."""
        hits, roles = KeywordMatcher.terms(self, text)
        if not text.isascii() and may_reorder(text) is not None:
            roles |= MAY_REORDER
        return hits, roles

    def patterns(self, text: str, roles: int) -> list[KeywordHit]:
        """The hits of the lists' regular expressions whose needle `terms` saw in `text`."""
        hits: list[KeywordHit] = []
        folded = None
        for search, rule, index, keyword_list, bit, regex in self._searches:
            if not roles & bit:
                continue
            seen = text
            if "nfkc" in keyword_list.normalize:
                if folded is None:
                    folded = fold_width(text)
                seen = folded
            if search(seen) is not None:
                hits.extend(self._pattern_hits(text, seen, regex, rule, index, keyword_list))
        return hits

    def _pattern_hits(
        self,
        text: str,
        seen: str,
        regex: re.Pattern[str],
        rule: PatternRule,
        index: int,
        keyword_list: KeywordList,
    ) -> list[KeywordHit]:
        """The matches of a list's regex in `seen` (`text`, or it `fold_width`ed), on `text`."""
        hits = []
        allowed = self._group_of[index].allowed_spans(text, index)
        for match in regex.finditer(seen):
            start, end = match.span()
            if start == end or any(a <= start and end <= b for a, b in allowed):
                continue
            matched = text[start:end]
            steps = ("nfkc",) if seen is not text and seen[start:end] != matched else ()
            hits.append(
                KeywordHit(
                    keyword_list, rule.source, matched, start, end, matched, steps, rule.source
                )
            )
        return hits
