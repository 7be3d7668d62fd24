"""Matches in a text's displayed order: what bidirectional reordering shows a reader.

A text is stored in logical order; a reader sees it laid out by the Unicode Bidirectional
Algorithm (UAX #9), so `approved: no \\u202ekcabkcik\\u202c` (RIGHT-TO-LEFT OVERRIDE ... POP
DIRECTIONAL FORMATTING) shows "approved: no kickback", and `\\u200fback \\u200fkick` (two
RIGHT-TO-LEFT MARKs) shows "kick back". The keyword and sensitive-data scans read the stored
order; for a text that may display in another one this module lays it out, one line a paragraph,
scans that with the same keyword lists (terms, allowlists, regexes, word edges) and detectors, and
maps each match back to the smallest raw span holding the characters it matched.

Only a text holding a character of bidi class R, AL or AN, or an explicit embedding, override or
isolate, can display in another order (`may_reorder`): without one every paragraph is left to
right and every character resolves to level 0 (P2-P3, X1-X8, W1-W7, N1-N2 and I1 can raise no
level). The keyword matcher's search for characters whose normalisation matters, which every
non-ASCII text gets, looks for these too (`keywords.MAY_REORDER`), so a text without one pays
nothing more on the hot path. The LEFT-TO-RIGHT MARK alone changes nothing (it is a strong L,
as Latin letters are); the RIGHT-TO-LEFT and ARABIC LETTER MARKs do (strong R and AL: they
reverse the order of the words around them), and so do Hebrew or Arabic letters and
Arabic-Indic digits (`٥٦٧٨ ١٢٣٤ ١٣٩` shows as a mobile number).

The levels are python-bidi's (a binding of the Rust crate unicode-bidi): its `get_display`
returns the reordered string only, so the levels it resolved are read from its debug output and
the line rules L1-L2 are applied here, as the crate applies them, to know which stored character
each displayed one is. The result is checked against `get_display` itself; should a version
disagree, each displayed character stands for its whole paragraph (a wider span, no missed match).

Bidi controls and marks are left out of the displayed text: they show as nothing and the
algorithm gives them no place of their own (X9). A list's term is read left to right in the
displayed line unless it is written in a right-to-left script (its first strong character is
R or AL): a reader reads that right to left, so it is looked for in the line reversed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from itertools import compress, groupby
from typing import TYPE_CHECKING, NamedTuple

from bidi import get_display

if TYPE_CHECKING:
    from auditor.policies.keywords import KeywordHit, KeywordMatcher
    from auditor.policies.pii import PiiHit, PiiScanner

# Every character whose bidi class is R, AL, AN or an explicit embedding, override, isolate or
# pop, by whole blocks where the Unicode Character Database gives unassigned code points a
# default of R or AL (DerivedBidiClass.txt), so characters newer than Python's tables count too.
# A superset: a few neutral characters of those blocks only cost a needless layout.
REORDERING_BMP = (
    "\u0590-\u08ff"  # Hebrew, Arabic, Syriac, Thaana, NKo, Samaritan, Mandaic, ALM U+061C
    "\u200f"  # RIGHT-TO-LEFT MARK
    "\u202a-\u202e"  # LRE, RLE, PDF, LRO, RLO
    "\u2066-\u2069"  # LRI, RLI, FSI, PDI
    "\ufb1d-\ufdff"  # Hebrew and Arabic presentation forms A
    "\ufe70-\ufefe"  # Arabic presentation forms B
)
REORDERING = (
    REORDERING_BMP
    + "\U00010800-\U00010fff"  # right-to-left scripts of the SMP, Rumi numerals (AN)
    + "\U0001e800-\U0001efff"  # Mende Kikakui, Adlam, Indic Siyaq, Arabic mathematical symbols
)
may_reorder = re.compile(f"[{REORDERING}]").search
"""Whether a text may display in another order than it is stored (a match or None)."""

# The bidi controls and marks: no place of their own in the displayed text (see above).
_UNSEEN = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """`text` with each lone surrogate (a JSON `"\\ud800"` the exact parser keeps) as U+FFFD, one
    character for one, so offsets hold: the automaton and the bidi crate work on UTF-8, which
    has no form for it."""
    return _SURROGATE.sub("\ufffd", text)


# `get_display(text, debug=True)`: the crate's `{:#?}` of its BidiInfo, one field a line at an
# indent of four (the text's own line escapes newlines), a class and a level for each UTF-8 byte.
_CLASSES_FROM = "\n    original_classes: [\n"
_LEVELS_FROM = "\n    ],\n    levels: [\n"
_PARAGRAPHS_FROM = "\n    ],\n    paragraphs: [\n"
_PARAGRAPH = re.compile(r"range: (\d+)\.\.(\d+),\s*level: Level\(\s*(\d+),?\s*\)")
_LEVEL = {f"{level},": level for level in range(128)}  # a level's `Level(`, `N,`, `),` tokens
_FIRST_BYTE = bytes(0 if 0x80 <= byte < 0xC0 else 1 for byte in range(256))  # of a character
# classes as the debug output spells them, each element with a comma after it
_SEPARATORS = frozenset(("B,", "S,"))
_SPACES = frozenset(("WS,", "FSI,", "LRI,", "RLI,", "PDI,"))
_REMOVED = frozenset(("RLE,", "LRE,", "RLO,", "LRO,", "PDF,", "BN,"))  # by rule X9


class Displayed(NamedTuple):
    """A text in displayed order without its bidi controls; `first[i]` and `last[i]` are the
    first and last raw characters displayed character `i` stands for (the same one, unless the
    order could not be checked)."""

    text: str
    first: list[int]
    last: list[int]

    def raw_span(self, start: int, end: int) -> tuple[int, int]:
        """The smallest raw span holding displayed characters `[start, end)`."""
        return min(self.first[start:end]), max(self.last[start:end]) + 1


def display_order(text: str) -> Displayed:
    """`text` laid out by UAX #9, each paragraph as one line, bidi controls left out."""
    laid = without_surrogates(text)  # U+FFFD, like a lone surrogate, is a neutral
    order = _visual_order(laid)
    if order is not None and "".join(laid[i] for i in order) == get_display(laid):
        first = last = order
        shown = [text[i] for i in order]
    else:
        shown, first, last = _by_paragraph(laid)
    kept = [i for i, char in enumerate(shown) if char not in _UNSEEN]
    if len(kept) == len(shown):
        return Displayed("".join(shown), first, last)
    return Displayed(
        "".join(shown[i] for i in kept), [first[i] for i in kept], [last[i] for i in kept]
    )


def _visual_order(text: str) -> list[int] | None:
    """The raw index of each displayed character, from the levels python-bidi resolved; None
    when its debug output cannot be read."""
    debug = get_display(text, debug=True)
    try:
        classes_from = debug.index(_CLASSES_FROM) + len(_CLASSES_FROM)
        levels_from = debug.index(_LEVELS_FROM, classes_from)
        paragraphs_from = debug.index(_PARAGRAPHS_FROM, levels_from)
    except ValueError:
        return None
    encoded = text.encode("utf-8")
    firsts = encoded.translate(_FIRST_BYTE)  # 1 for each character's first byte, else 0
    byte_classes = debug[classes_from:levels_from].split()
    level_tokens = debug[levels_from + len(_LEVELS_FROM) : paragraphs_from].split()
    byte_levels = level_tokens[1::3]
    paragraphs = _PARAGRAPH.findall(debug, paragraphs_from)
    if (
        len(byte_classes) != len(encoded)
        or len(level_tokens) != 3 * len(encoded)
        or level_tokens.count("Level(") != len(encoded)
        or not paragraphs
    ):
        return None
    classes = list(compress(byte_classes, firsts))
    try:
        levels = list(map(_LEVEL.__getitem__, compress(byte_levels, firsts)))
    except KeyError:
        return None
    order: list[int] = []
    byte_at = 0
    for byte_start, byte_end, paragraph_level in paragraphs:
        if int(byte_start) != byte_at or int(byte_end) <= byte_at:
            return None
        byte_at = int(byte_end)
        start = len(order)
        end = start + firsts.count(1, int(byte_start), byte_at)
        line = levels[start:end]
        if not any(level & 1 for level in set(line)):  # all left to right: shown as stored
            order.extend(range(start, end))
            continue
        _reset_line_ends(line, classes[start:end], int(paragraph_level))
        order.extend(_reordered(line, start))
    return order if len(order) == len(text) else None


def _reset_line_ends(levels: list[int], classes: list[str], paragraph_level: int) -> None:
    """Rule L1 as unicode-bidi applies it: separators, and the spaces and isolate controls
    before them or at the end of the line, go to the paragraph's level; characters X9 removed
    take their predecessor's level, and go with the spaces around them."""
    reset_from: int | None = 0
    previous = paragraph_level
    for index, kind in enumerate(classes):
        if kind in _SEPARATORS:
            start = index if reset_from is None else reset_from
            levels[start : index + 1] = [paragraph_level] * (index + 1 - start)
            reset_from = None
        elif kind in _SPACES:
            if reset_from is None:
                reset_from = index
        elif kind in _REMOVED:
            if reset_from is None:
                reset_from = index
            levels[index] = previous
        else:
            reset_from = None
        previous = levels[index]
    if reset_from is not None:
        levels[reset_from:] = [paragraph_level] * (len(levels) - reset_from)


def _reordered(levels: list[int], offset: int) -> list[int]:
    """Rule L2: from the highest level down to the lowest odd one, every run of characters at
    that level or above reversed; the raw indices (from `offset`) in displayed order.

    Done on runs of one level: a run is reversed as a whole by each level from its own down
    to the lowest odd one, so its characters end up backwards when that count is odd."""
    runs: list[tuple[int, int, int]] = []
    at = 0
    for level, same in groupby(levels):
        size = sum(1 for _ in same)
        runs.append((at, at + size, level))
        at += size
    lowest = min(levels) | 1
    for level in range(max(levels), lowest - 1, -1):
        index, count = 0, len(runs)
        while index < count:
            if runs[index][2] < level:
                index += 1
                continue
            end = index
            while end < count and runs[end][2] >= level:
                end += 1
            runs[index:end] = runs[index:end][::-1]
            index = end
    order: list[int] = []
    for start, end, level in runs:
        if level >= lowest and (level - lowest) % 2 == 0:
            order.extend(range(offset + end - 1, offset + start - 1, -1))
        else:
            order.extend(range(offset + start, offset + end))
    return order


def _by_paragraph(text: str) -> tuple[list[str], list[int], list[int]]:
    """`get_display` as it is, each character standing for its whole paragraph (which the
    crate keeps in place, each paragraph as long as it was)."""
    shown = list(get_display(text))
    first: list[int] = []
    last: list[int] = []
    start = 0
    for index, char in enumerate(text):
        if index + 1 == len(text) or unicodedata.bidirectional(char) == "B":
            first.extend([start] * (index + 1 - start))
            last.extend([index] * (index + 1 - start))
            start = index + 1
    return shown, first, last


@lru_cache(maxsize=4096)
def right_to_left(term: str) -> bool:
    """Whether a term is written in a right-to-left script: its first strong character is R or
    AL (a reader reads it right to left in the displayed line)."""
    for char in term:
        kind = unicodedata.bidirectional(char)
        if kind == "L":
            return False
        if kind in ("R", "AL"):
            return True
    return False


def displayed_only(
    text: str,
    keywords: KeywordMatcher,
    pii: PiiScanner,
    keyword_hits: Sequence[KeywordHit],
    pii_hits: Sequence[PiiHit],
) -> tuple[list[KeywordHit], list[PiiHit]]:
    """The keyword and sensitive-data hits of `text`'s displayed order that the stored order
    did not give (`keyword_hits`, `pii_hits`: the same list's term or pattern, or the same
    rule, at the same raw span), at their raw spans, with `bidi` first in their
    normalisations and what the reader sees as `displayed`."""
    shown = display_order(text)
    if shown.text == text:
        return [], []
    seen = {_identity(hit, hit.start, hit.end) for hit in keyword_hits}
    found: list[KeywordHit] = []
    readings = [(shown, False)]
    if keywords.right_to_left_terms:  # read right to left: the line reversed
        reversed_shown = Displayed(shown.text[::-1], shown.first[::-1], shown.last[::-1])
        readings.append((reversed_shown, True))
    for reading, backwards in readings:
        for hit in keywords.scan(reading.text):
            if hit.pattern is None and right_to_left(hit.normalized_term) != backwards:
                continue
            if hit.pattern is not None and backwards:
                continue
            start, end = reading.raw_span(hit.start, hit.end)
            key = _identity(hit, start, end)
            if key in seen:
                continue
            seen.add(key)
            found.append(
                hit._replace(
                    start=start,
                    end=end,
                    matched=text[start:end],
                    normalizations=("bidi", *hit.normalizations),
                    displayed=hit.matched,
                )
            )
    detected = {(h.rule.id, h.start, h.end) for h in pii_hits}
    more: list[PiiHit] = []
    for pii_hit in pii.scan(shown.text):
        start, end = shown.raw_span(pii_hit.start, pii_hit.end)
        if (pii_hit.rule.id, start, end) in detected:
            continue
        detected.add((pii_hit.rule.id, start, end))
        more.append(
            pii_hit._replace(
                start=start,
                end=end,
                matched=text[start:end],
                normalizations=("bidi", *pii_hit.normalizations),
                displayed=pii_hit.matched,
            )
        )
    return found, more


def _identity(hit: KeywordHit, start: int, end: int) -> tuple[str, str | None, str, int, int]:
    """What makes two keyword hits one: the list, the term (or the pattern, whatever text it
    matched) and the raw span."""
    if hit.pattern is not None:
        return hit.keyword_list.id, hit.pattern, "", start, end
    return hit.keyword_list.id, None, hit.normalized_term, start, end
