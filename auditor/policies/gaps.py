"""Whether a keyword match found once separators were deleted is evasion or two words joined.

The `separators` step deletes spaces, punctuation, symbols and emoji wherever they are, so the
automaton finds `洗钱` in `洗，钱` and in `法😀轮` alike, but also in `衣服洗 钱包找到了` (the
clothes are washed; the wallet is found) and `衣服要洗，钱也要存`. Chinese is written without
spaces, so a gap between two Chinese characters is evasion when a side of it is a piece of the term
alone: the run of Chinese characters there begins or ends inside the match (`洗 钱`, `帮他洗，钱`,
`内幕 消息`, `内😀幕😀消😀息`). Where the runs on both sides reach beyond the match (`衣服洗 钱包`),
the gap is a break between words or clauses. Marks nobody types between Chinese words (`*`,
`#`, `|`, `~`, `=`, `+`, `^`, `_`) and characters that show as nothing join whatever is around
them.

Between letters of other scripts, punctuation joins only where the term holds it (`AT&T`), and a
symbol or emoji only without a space beside it (`kick🔥back`, not `kick 🔥 back`); spaces are the
whole-word check's (`keywords._joined_words`).

A pinyin spelling (see `pinyin`) stands for the characters it spells, and a gap beside one of
its Chinese characters is judged as a gap between those characters: `衣服洗 qian包` spells
`衣服洗 钱包` and is no more evasion than it (`帮我洗 qian` and `洗 qian` are). A gap between two
syllables is not: pinyin is typed with a space between syllables (`wo men qu chi fan`), so it
tells no word apart, and is judged as a gap between Latin letters.

A match made by reading Cyrillic or Greek letters as the Latin letters they look like counts only
in a word that mixes them with Latin ones (`раssword`, `kickbаck`, UTS #39's mixed-script test):
a word written wholly in Cyrillic or Greek is that language's word, not a disguised term.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from functools import cache

from auditor.policies.normalize import (
    CONFUSABLES,
    cjk_at,
    is_invisible,
    is_separator,
    is_soft_separator,
    is_wordish,
    separators_in_plane,
)

_BEYOND_BMP = re.compile("[\U00010000-\U0010ffff]").search
# Typed between characters only to split a term: a gap of these alone (and invisible ones) joins.
_MARKS = frozenset("*#|~=+^_＊＃｜～＝＋＾＿")
_LOOKALIKES = "".join(sorted(char for char in CONFUSABLES if 0x370 <= ord(char) < 0x530))
_LOOKALIKE = re.compile(f"[{_LOOKALIKES}]").search  # Cyrillic and Greek
_LOOKALIKE_ALL = re.compile(f"[{_LOOKALIKES}]").findall


@cache
def _gap_or_lookalike() -> Callable[[str, int, int], object]:
    """A search for a character that may be a separator (every one the `separators` step
    deletes in the plane, any beyond it) or a Cyrillic or Greek look-alike: most matches hold
    none, and this one call clears them."""
    deleted = "".join(map(chr, separators_in_plane())) + _LOOKALIKES
    return re.compile(f"[{re.escape(deleted)}\U00010000-\U0010ffff]").search


@cache
def _separator_runs() -> Callable[[str, int, int], Iterator[re.Match[str]]]:
    """The runs of characters that may be separators: every one `separators` deletes in the
    plane, and any character beyond it (which `_exact` asks about)."""
    deleted = "".join(map(chr, separators_in_plane()))
    return re.compile(f"[{re.escape(deleted)}\U00010000-\U0010ffff]+").finditer


def _exact(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """The runs of separators in `text[start:end]`, a run of possible ones."""
    if _BEYOND_BMP(text, start, end) is None:
        yield start, end
        return
    position = start
    while position < end:
        if not is_separator(text[position]):
            position += 1
            continue
        gap_start = position
        while position < end and is_separator(text[position]):
            position += 1
        yield gap_start, position


def breaks_words(text: str, start: int, end: int, term: str, spelled: bool = False) -> bool:
    """Whether the match at raw `[start, end)` of `text` joins words or clauses into `term`
    across one of its gaps, or reads a wholly Cyrillic or Greek word as a Latin term; with
    `spelled`, `term` is a pinyin spelling, and its syllables count as the characters they
    spell on the side of a gap that has a Chinese character on the other."""
    if _gap_or_lookalike()(text, start, end) is None:
        return False
    runs = _separator_runs()(text, start, end)
    if _BEYOND_BMP(text, start, end) is None:  # every run is a run of separators
        gaps = [span for run in runs if start < (span := run.span())[0] and span[1] < end]
    else:
        gaps = [
            span
            for run in runs
            for span in _exact(text, *run.span())
            if start < span[0] and span[1] < end
        ]
    if spelled:
        return _breaks_spelled(text, start, end, term, gaps)
    last = len(gaps) - 1
    for index, (gap_start, gap_end) in enumerate(gaps):
        if not _joins(text, gap_start, gap_end, term, index, last, start, end):
            return True
    return _lookalike_word(text, start, end, term)


def _breaks_spelled(
    text: str, start: int, end: int, term: str, gaps: list[tuple[int, int]]
) -> bool:
    """`breaks_words` for a pinyin spelling: a gap with a Chinese character beside it is one
    between characters (the syllable on its other side is one), counted among those gaps only;
    a gap between syllables is one between Latin letters."""
    beside = [gap for gap in gaps if cjk_at(text, gap[0] - 1) or cjk_at(text, gap[1])]
    last = len(beside) - 1
    for index, (gap_start, gap_end) in enumerate(beside):
        if not _joins_characters(text, gap_start, gap_end, index, last, start, end):
            return True
    return any(
        not _joins(text, gap_start, gap_end, term, 0, 0, start, end)
        for gap_start, gap_end in gaps
        if (gap_start, gap_end) not in beside
    )


def _joins(
    text: str, start: int, end: int, term: str, index: int, last: int, first: int, after: int
) -> bool:
    """Whether the gap `text[start:end]`, gap `index` of `last + 1` in the match at
    `[first, after)`, is evasion."""
    gap = text[start:end]
    if cjk_at(text, start - 1) and cjk_at(text, end):
        return _joins_characters(text, start, end, index, last, first, after)
    left, right = text[start - 1], text[end]
    soft = [char for char in gap if is_soft_separator(char)]
    if not soft or all(unicodedata.normalize("NFKC", char) in term for char in soft):
        return True
    spaced = any(char.isspace() for char in gap)
    symbols = all(unicodedata.category(char)[0] == "S" for char in soft)
    return symbols and not spaced and is_wordish(left) and is_wordish(right)


def _joins_characters(
    text: str, start: int, end: int, index: int, last: int, first: int, after: int
) -> bool:
    """Whether the gap `text[start:end]` between Chinese characters, gap `index` of `last + 1`
    in the match at `[first, after)`, is evasion: a side of it is a piece of the term alone, or
    it is marks nobody types between words."""
    if index > 0 or first == 0 or not cjk_at(text, first - 1):
        return True
    if index < last or after == len(text) or not cjk_at(text, after):
        return True
    return all(char in _MARKS or is_invisible(char) for char in text[start:end])


def _lookalike_word(text: str, start: int, end: int, term: str) -> bool:
    """Whether the match reads Cyrillic or Greek letters (that `term` lacks) as Latin ones in a
    word that holds no Latin letter."""
    if _LOOKALIKE(text, start, end) is None:
        return False
    if all(char in term for char in _LOOKALIKE_ALL(text, start, end)):
        return False
    while start > 0 and is_wordish(text[start - 1]):
        start -= 1
    while end < len(text) and is_wordish(text[end]):
        end += 1
    return not any(char.isascii() and char.isalpha() for char in text[start:end])
