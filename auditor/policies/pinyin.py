"""Pinyin spellings of a keyword list's Chinese terms: the opt-in `pinyin` step.

Chinese users get past a filter by typing a term in pinyin, the Latin spelling their input
method takes anyway: 洗钱 as `xiqian`, `xi qian`, `XiQian`, `xi-qian`, or half of it, `洗qian`,
`xi钱`. The step maps no character of a text (tones are rarely typed, and a text's Latin
letters cannot be read back into characters): it gives each Chinese term more keys, its
spellings, which the list's other steps then read as they read the term (case, width,
separators), and which the matcher holds to whole words of Latin letters (see `keywords`).

What a term is spelled as, and why:
- every reading of each character, as pypinyin lists them without tones (行: xing, hang, heng),
  with ü typed as `v` or `u` (女: nv, nu), while they make at most `MAX_FULL` spellings wholly
  in pinyin; past it (a term of several polyphones, whose readings multiply: 重庆银行行长 has
  54), only the reading pypinyin gives each character in the term's context (its phrase tables
  know 银行 is yin hang), and past it again (many a ü), those with ü as `v` alone: so a term
  of any length spells in bounded time, and what is left out is rare readings;
- only terms of two or more characters, and spellings of at least `MIN_LETTERS` letters: one
  character's reading alone is an English word too often (`bang`, `ban`, `men`, `fan`, `long`,
  `he`), and a syllable is typed in every line of pinyin chat;
- mixed spellings, each character either itself or its reading in the term's context (`洗qian`,
  `xi钱`: who types half a term types the reading they say), for terms of two or three
  characters, and for terms of four (`MIXED_UP_TO`) each half (`内幕xiaoxi`, `neimu消息`),
  since such a term is two words more often than not; each Latin run is two letters or more
  (`a`, `e` and `o` are syllables, and a letter beside a character is more often an
  abbreviation). A term makes at most 8 spellings wholly in pinyin and, but for a ü (`v` or
  `u`) doubling them, 6 mixed ones;
- no initials (`xq`): two letters stand for hundreds of terms and for many abbreviations.

Two terms with one spelling (洗钱 and 喜钱, both `xiqian`) share it: a match names the first.

pypinyin loads its tables on first use (about 0.3 s of CPU, a second on this busy 2-core
machine, and 50 MB), so only a policy with a list that names the step pays for them.

A list of 200,000 terms (2-4 characters) makes 1,046,139 spellings (621,157 wholly in pinyin,
424,982 mixed), 1,223,545 automaton strings with the terms. Its engine took 39 s of CPU and
945 MB at the peak (pinyin25, /usr/bin/time -v; 51 s and 1,039 MB before): spelling 12 s
(pypinyin cutting terms into words 2.4 s, reading the words in context 2.8 s), building the
automaton of 1.2 million strings 16 s and 300 MB at its peak (it grows faster than the strings:
2.4 s for 300,000, 6 s for 600,000), without the step 4.5 s and 212 MB.
"""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec
from itertools import chain, pairwise, product
from typing import Any

from auditor.policies.normalize import is_cjk

MAX_FULL = 8
"""At most this many spellings from all the readings of a term's characters."""
MIXED_UP_TO = 4
"""Mixed spellings (`洗qian`) only for terms of at most this many characters."""
MIN_LETTERS = 4
"""A term spelled wholly in pinyin with fewer letters is left unspelled (`ayi`)."""


REQUIREMENT = "pypinyin>=0.55"
"""What the step needs installed (pyproject.toml names it too)."""


def installed() -> bool:
    """Whether pypinyin can be imported, found without importing it (which loads its tables)."""
    return find_spec("pypinyin") is not None


@cache
def _pypinyin() -> Any:
    import pypinyin

    return pypinyin


def _no_reading(_chars: str) -> None:
    return None


@cache
def _readings(char: str) -> tuple[str, ...]:
    """Every reading of `char` without tones, lower case (ü as `v`)."""
    pypinyin = _pypinyin()
    found = pypinyin.pinyin(
        char, style=pypinyin.Style.NORMAL, heteronym=True, errors=_no_reading, strict=True
    )
    readings = (reading.strip().lower() for reading in (found[0] if found else ()))
    return tuple(dict.fromkeys(each for each in readings if each.isascii() and each.isalpha()))


def _in_context(terms: list[str]) -> list[list[tuple[str, ...]] | None]:
    """The reading pypinyin gives each character of each of `terms` in its context (its phrase
    tables know 银行 is yin hang), as its `lazy_pinyin` gives them: each term cut into words,
    each word read once however many terms hold it (200,000 terms hold 400,000 words, most of
    them many times: reading each took 15 of the 19 s their spellings took)."""
    if not terms:
        return []
    pypinyin = _pypinyin()
    from pypinyin.converter import UltimateConverter
    from pypinyin.core import Pinyin

    converter = UltimateConverter()
    cut = Pinyin(converter).seg
    style = pypinyin.Style.NORMAL
    read: dict[str, tuple[str, ...]] = {}
    each: list[list[tuple[str, ...]] | None] = []
    for term in terms:
        readings: list[tuple[str, ...]] = []
        for word in cut(term):
            found = read.get(word)
            if found is None:
                found = read[word] = tuple(
                    chain.from_iterable(converter.convert(word, style, False, "default", True))
                )
            for reading in found:
                if reading.isascii() and reading.isalpha():
                    readings.append((reading.lower(),))
                else:  # a character pypinyin cannot read: the term is not spelled
                    readings.append(())
        each.append(readings if len(readings) == len(term) and all(readings) else None)
    return each


def spellings(term: str) -> tuple[str, ...]:
    """The pinyin spellings of `term` (see `spellings_of`)."""
    return spellings_of([term])[0]


def spellings_of(terms: list[str]) -> list[tuple[str, ...]]:
    """The pinyin spellings of each of `terms` (a list's terms as normalised: separators gone,
    simplified), a space between syllables and between a syllable and a character (`xi qian`,
    `洗 qian`), so that the matcher knows where a space in a text may fall; none for a term
    that is not wholly Chinese characters, or of one. pypinyin is asked for readings in context
    only for terms with a character of several readings, and for those all at once."""
    readings: list[list[tuple[str, ...]] | None] = []
    for term in terms:
        each = None
        if len(term) >= 2 and all(is_cjk(char) for char in term):
            each = [_readings(char) for char in term]
        readings.append(each if each is not None and all(each) else None)
    polyphonic = [
        index
        for index, each in enumerate(readings)
        if each is not None and any(len(reading) > 1 for reading in each)
    ]
    contexts: list[list[tuple[str, ...]] | None] = list(readings)
    for index, context in zip(
        polyphonic, _in_context([terms[index] for index in polyphonic]), strict=True
    ):
        contexts[index] = context
    return [
        () if each is None else _spelled(term, each, context)
        for term, each, context in zip(terms, readings, contexts, strict=True)
    ]


def _spelled(
    term: str, readings: list[tuple[str, ...]], context: list[tuple[str, ...]] | None
) -> tuple[str, ...]:
    """The spellings of `term`, whose characters read `readings`, or `context` in the term:
    each reading, ü typed `v` and `u`, while they make at most `MAX_FULL` spellings; else the
    readings in context, ü both ways, while those do; else those with ü as `v` alone (a term
    of many characters with ü would double its spellings with each)."""
    choices = [_with_u(each) for each in readings]
    if _count(choices) > MAX_FULL:
        if context is None:
            return ()
        choices = [_with_u(each) for each in context]
        if _count(choices) > MAX_FULL:
            choices = context
    found: dict[str, None] = {}
    for syllables in product(*choices):
        if sum(map(len, syllables)) >= MIN_LETTERS:
            found[" ".join(syllables)] = None
    if len(term) > MIXED_UP_TO or context is None:
        return tuple(found)
    for units in product(*_mixable(term, [_with_u(each) for each in context])):
        kept = sum(1 for unit in units if not unit.isascii())
        if 0 < kept < len(units) and _runs_long_enough(units):
            found[_joined(units)] = None
    return tuple(found)


@cache
def _with_u(readings: tuple[str, ...]) -> tuple[str, ...]:
    """`readings` with ü typed as `u` too (女: nv, nu); asked 2,000,000 times for 200,000 terms,
    of a few thousand readings."""
    if not any("v" in each for each in readings):
        return readings
    return tuple(
        dict.fromkeys(spelled for each in readings for spelled in (each, each.replace("v", "u")))
    )


def _mixable(term: str, context: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The parts of `term` a mixed spelling keeps or spells, each with its choices: itself or
    its spelling in context. A term of four characters is two words (内幕 消息, 代开 发票) more
    often than not, and is half typed a word at a time."""
    spelled = [(char, *each) for char, each in zip(term, context, strict=True)]
    if len(term) < 4:
        return spelled
    return [
        (term[at : at + 2], *(f"{a} {b}" for a, b in product(*context[at : at + 2])))
        for at in (0, 2)
    ]


def _count(readings: list[tuple[str, ...]]) -> int:
    """How many ways there are to choose one of each character's `readings`."""
    count = 1
    for each in readings:
        count *= len(each)
    return count


def _joined(units: tuple[str, ...]) -> str:
    """Units of a mixed spelling with a space beside each syllable, none between characters
    (a unit is characters of the term, or syllables, which are ASCII)."""
    text = units[0]
    for before, unit in pairwise(units):
        text += unit if not before.isascii() and not unit.isascii() else f" {unit}"
    return text


def _runs_long_enough(units: tuple[str, ...]) -> bool:
    """Whether each run of syllables between the characters kept is two letters or more."""
    run = 0
    for unit in units:
        if not unit.isascii():  # characters of the term
            if run == 1:
                return False
            run = 0
        else:
            run += len(unit)
    return run != 1
