"""Normalisation against evasion, character by character so every match maps back to raw text.

Each step is switchable per keyword list: `decode` (`&#27927;`, `%E6%B4%97`: see `escapes`, which
the keyword matcher runs apart, since it maps runs of characters), `nfkc` (full/half width,
compatibility forms, circled digits), `confusables` (Cyrillic and Greek letters that look like
Latin ones, `раss` with a Cyrillic р and а, and Latin small capitals, mapped to the Latin letter),
`case` (case folding), `traditional` (traditional to simplified Chinese with OpenCC), `digits`
(other digit styles such as ❶ or ١), `leet` (digits and signs for letters: `k1ckb4ck`; only
when named, as `markup` is: HTML tags and BBCode between characters, see `escapes`) and
`separators` (spaces, filler symbols and characters that
show as nothing typed between characters: `内*幕`, `内 幕`, `k-i-c-k`, a zero-width space, a
variation selector, a Hangul filler, an accent or strike-through stacked on a letter; and
punctuation, symbols and emoji: `洗，钱`, `法😀轮`). Removing punctuation or a space can join two
words across a break into a term (`衣服洗 钱包`), so the matcher keeps such a match only where the
gap is evasion (see `gaps`): the normalisation deletes, the matcher judges. `pinyin` (only when
named) spells the terms rather than the text (`洗钱` as `xiqian`, `洗qian`: see `pinyin`).

Every step maps one character to zero or more characters regardless of its neighbours, so the
pipeline is one `str.translate` table, filled lazily as characters are first seen, and a match in
the normalised text maps back to raw offsets through the cumulative piece lengths (`offsets`).
`str.translate` costs about 50 ns a character outside ASCII, so the hot path avoids it where it
can (see `keywords`): ASCII text goes through `bytes.translate`, text without a character
whose change could matter to a term is not translated at all, and the rest is translated through
lists over the Basic Multilingual Plane (`translate`, `lengths`), a third cheaper than dicts.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable
from functools import cache, cached_property, lru_cache
from itertools import accumulate, combinations

STEPS = ("decode", "nfkc", "confusables", "case", "traditional", "digits", "separators")
"""The steps a keyword list applies when it names none."""
STEP_ORDER = (
    "decode",
    "markup",
    "nfkc",
    "confusables",
    "case",
    "traditional",
    "digits",
    "leet",
    "separators",
    "pinyin",
)
"""Every step, in the order applied: `markup`, `leet` and `pinyin` only in a list that names
them."""
# `pinyin` maps no character either: it gives a list's Chinese terms their pinyin spellings as
# more keys (see `pinyin`), which the steps before it then read as they read the terms.
# `decode` (character references and percent-escapes) and `markup` (HTML tags and comments,
# BBCode) map runs, not characters (see `escapes`): the keyword matcher applies them apart, and a
# `Normalizer` leaves them out of its character map.

# `leet`: digits and signs typed for the Latin letters they look like (`k1ckb4ck`, `p@ssw0rd`).
# A 1 stands for an i or an l, so `l` is read as `i` too, in the terms as in the text. Only in a
# list that names the step: it also reads `s3` as `se` and `4ever` as `aever`, and it makes the
# list's matches depend on the text's digits, which turns off the engine's digit-blind memo; the
# matcher drops a match that is numbers rather than a word (`mostly_leet`).
LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "l": "i"}
_LEET_TABLE = str.maketrans(LEET)


def mostly_leet(matched: str) -> bool:
    """Whether a match read through `leet` is numbers rather than a word: its digits and signs
    outnumber its letters (`4.55` and `a55` are a price and a model name, not `ass`), or one
    stands alone (`as 5`, `4 5.5`). `k1ckb4ck`, `ki11` and `p@ssw0rd` are words."""
    signs = [at for at, char in enumerate(matched) if _leet_sign(char)]
    if not signs:
        return False
    if len(signs) > sum(char.isalpha() for char in matched):
        return True
    last = len(matched) - 1
    return any(
        not (at > 0 and _in_word(matched[at - 1])) and not (at < last and _in_word(matched[at + 1]))
        for at in signs
    )


def _leet_sign(char: str) -> bool:
    return char.isdigit() or char in "@$"


def _in_word(char: str) -> bool:
    return char.isalpha() or _leet_sign(char)


SEPARATOR_CHARS = frozenset("*-_.·•‧∙⋅~|/\\+=#^`'\"‐‑‒–—―＊－＿．・･～｜／＼＋＝＃＾｀＇＂")
# Separators a reader does not see: Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties
# .txt: joiners, variation selectors, Hangul fillers, tags, ...), the braille blank (a blank, as a
# space is), and the combining diacritics that belong to no script (accents and overlays such as
# the strike-through U+0336, which can be stacked on any letter).
# NFKC runs character by character here, so it never composes a mark with its letter; composing
# would not help anyway (`í` is no `i`). Marks of a script (Devanagari vowel signs, Arabic
# vowels) stay: they change the word.
_INVISIBLE_RANGES = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
    (0x2800, 0x2800),
    (0x0300, 0x036F),
    (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF),
    (0x20D0, 0x20FF),
    (0xFE20, 0xFE2F),
)
_INVISIBLE = frozenset(code for low, high in _INVISIBLE_RANGES for code in range(low, high + 1))
_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))
_BMP_CJK_RANGES = _CJK_RANGES[:3]
_BEYOND_BMP_CHAR = re.compile("[\U00010000-\U0010ffff]")
_BEYOND_BMP = _BEYOND_BMP_CHAR.search


_CJK_CHAR = re.compile("[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in _CJK_RANGES) + "]")
_CJK_MATCH = _CJK_CHAR.match
cjk_at = _CJK_MATCH
"""`cjk_at(text, position)`: a match when `text[position]` is a Chinese character (no slice)."""


def is_cjk(char: str) -> bool:
    return _CJK_MATCH(char) is not None


def is_invisible(char: str) -> bool:
    """A character that shows as nothing, or as a mark on the character before it."""
    return ord(char) in _INVISIBLE or unicodedata.category(char) == "Cf"


def is_hard_separator(char: str) -> bool:
    """A space, a filler symbol or a character that shows as nothing: no word holds one."""
    return char.isspace() or char in SEPARATOR_CHARS or is_invisible(char)


# Punctuation and symbols (emoji among them), but currency signs (`$100`, `¥`) and the ASCII
# `@`, `:` and `%`, which hold addresses, URLs and figures together: a text's `@` and `://` tell
# the sensitive-data prefilter (see `keywords`) whether a detector need run, read after this
# normalisation, which must keep them.
_SOFT_CATEGORIES = frozenset(("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sk", "So"))
_KEPT = frozenset("@:%")


def is_soft_separator(char: str) -> bool:
    """Punctuation or a symbol that is no hard separator: it may end a clause or a word (`，`,
    `!`, `、`) as well as split a term, so a match across one is judged (`gaps`)."""
    return (
        char not in _KEPT
        and not is_hard_separator(char)
        and unicodedata.category(char) in _SOFT_CATEGORIES
    )


def is_separator(char: str) -> bool:
    """What the `separators` step deletes. A character of the plane is looked up in the step's
    own table: an `lru_cache` here, filled with the whole plane while that table was built,
    kept 65,536 strings and their entries, 10 MB in every run and worker."""
    code = ord(char)
    if code < 0x10000:
        return code in _separator_table()
    return _separates(char)


def _separates(char: str) -> bool:
    return is_hard_separator(char) or is_soft_separator(char)


# Letters of other scripts shaped like Latin ones (Unicode's confusables.txt, the unambiguous
# ones), and Latin small capitals, each to its Latin letter.
CONFUSABLES = dict(
    zip(
        "АВСЕНІЈКМОРЅТХУԜԚаеорсухіјѕһԁԝԛӏΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοιρνκυϲϳᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ",
        "ABCEHIJKMOPSTXYWQaeopcyxijshdwqlABEZHIKMNOPTYXaoipvkucjabcdefghijklmnoprstuvwyz",
        strict=True,
    )
)
_CONFUSABLES_TABLE = str.maketrans(CONFUSABLES)


@lru_cache(maxsize=65_536)
def is_wordish(char: str) -> bool:
    """A letter or digit of a script written with spaces between words (not CJK); a Hangul
    filler, a letter by its category, is a separator and glues no match to a word."""
    first = unicodedata.normalize("NFKC", char)[:1]
    return first.isalnum() and ord(first) < 0x2E80 and ord(first) not in _INVISIBLE


@cache
def _converter() -> Callable[[str], str]:
    """OpenCC's traditional-to-simplified converter, built once: building it is slow."""
    import opencc

    return opencc.OpenCC("t2s").convert


@cache
def _t2s_bmp() -> dict[str, str]:
    """Traditional to simplified for every BMP ideograph that changes, in one OpenCC call."""
    chars = [chr(code) for low, high in _BMP_CJK_RANGES for code in range(low, high + 1)]
    converted = _converter()("\n".join(chars)).split("\n")
    return {raw: new for raw, new in zip(chars, converted, strict=True) if raw != new}


def _t2s(char: str) -> str:
    if ord(char) < 0x10000:
        return _t2s_bmp().get(char, char)
    return _converter()(char)


@cache
def _bmp_steps() -> tuple[dict[int, str], dict[int, str], dict[int, None]]:
    """`traditional`, `digits` and `separators` over the Basic Multilingual Plane, as
    `str.translate` tables of the characters they change (one pass over the plane each,
    where asking character by character is what makes building `Normalizer.changes` slow)."""
    plane = [chr(code) for code in range(0x10000)]
    simplified = {ord(raw): new for raw, new in _t2s_bmp().items()}
    digits = {
        ord(c): _digit(c)
        for c in plane
        if not c.isascii() and unicodedata.digit(c, None) is not None
    }
    return simplified, digits, _separator_table()


@cache
def _separator_table() -> dict[int, None]:
    """The `separators` step over the plane, as a `str.translate` table of what it deletes."""
    return dict.fromkeys(code for code in range(0x10000) if _separates(chr(code)))


def separators_in_plane() -> Iterable[int]:
    """The code of every character of the Basic Multilingual Plane `separators` deletes."""
    return _bmp_steps()[2].keys()


@cache
def _plane_but_nul() -> str:
    """Every character of the Basic Multilingual Plane but NUL and the surrogates."""
    return "".join(map(chr, range(1, 0xD800))) + "".join(map(chr, range(0xE000, 0x10000)))


def later_steps_by_character(steps: tuple[str, ...], piece: str) -> str:
    """`traditional`, `digits` and `separators` on `piece`, asking each character in turn:
    for pieces beyond the plane the tables of `_bmp_steps` cover."""
    if "traditional" in steps:
        piece = "".join(_t2s(c) if is_cjk(c) else c for c in piece)
    if "digits" in steps:
        piece = "".join(_digit(c) for c in piece)
    if "leet" in steps:
        piece = piece.translate(_LEET_TABLE)
    if "separators" in steps:
        piece = "".join(c for c in piece if not is_separator(c))
    return piece


def _digit(char: str) -> str:
    if char.isascii():
        return char
    value = unicodedata.digit(char, None)
    return char if value is None else str(value)


class _Table(dict):
    """A `str.translate` table that computes a character's mapping the first time it is asked."""

    def __init__(self, piece: Callable[[str], str]) -> None:
        super().__init__()
        self._piece = piece

    def __missing__(self, code: int) -> int | str | None:
        piece = self._piece(chr(code))
        value: int | str | None
        if not piece:
            value = None
        elif len(piece) == 1:
            value = ord(piece)
        else:
            value = piece
        self[code] = value
        return value


def raw_index(offsets: list[int], position: int) -> int:
    """The raw character that produced normalised character `position` (see `offsets`)."""
    return bisect_right(offsets, position)


class Normalizer:
    """One combination of steps, applied in the fixed order of `STEPS`."""

    def __init__(self, steps: Iterable[str]) -> None:
        wanted = set(steps)
        unknown = wanted - set(STEP_ORDER)
        if unknown:
            raise ValueError(f"unknown normalisation {sorted(unknown)[0]!r}")
        self.steps: tuple[str, ...] = tuple(step for step in STEP_ORDER if step in wanted)
        self.table = _Table(self.piece)
        self.widths = _Table(lambda char: chr(len(self.piece(char))))
        ascii_map, deleted = bytearray(range(128)) + bytes(128), bytearray()
        for code in range(128):
            piece = self.piece(chr(code))
            if not piece:
                deleted.append(code)
            else:
                ascii_map[code] = ord(piece)  # ASCII maps to at most one ASCII char
        self.ascii_tables = (bytes(ascii_map), bytes(deleted))

    def piece(self, char: str) -> str:
        """What one character becomes."""
        steps = self.steps
        piece = char
        if "nfkc" in steps:
            piece = unicodedata.normalize("NFKC", piece)
        if "confusables" in steps:
            piece = piece.translate(_CONFUSABLES_TABLE)
        if "case" in steps:
            piece = piece.casefold()
        if _BEYOND_BMP(piece) is None:  # each later step maps a character on its own
            simplified, digits, separators = _bmp_steps()
            if "traditional" in steps:
                piece = piece.translate(simplified)
            if "digits" in steps:
                piece = piece.translate(digits)
            if "leet" in steps:
                piece = piece.translate(_LEET_TABLE)
            if "separators" in steps:
                piece = piece.translate(separators)
            return piece
        return later_steps_by_character(steps, piece)

    def normalize(self, text: str) -> str:
        if text.isascii():
            table, deleted = self.ascii_tables
            return text.encode("ascii").translate(table, deleted).decode("ascii")
        return text.translate(self.table)

    @cached_property
    def translate(self) -> Callable[[str], str]:
        """`normalize` for text outside ASCII, by a translate table that is a list over the
        Basic Multilingual Plane (a list index is cheaper than a dict look-up: a third off the
        time), or by the lazy `table` when a character lies beyond the plane. The list is made
        when this is first asked for (the keyword matcher asks when it is built)."""
        bmp: list[int | str | None] = list(range(0x10000))
        for char, piece in self.changes().items():
            bmp[ord(char)] = ord(piece) if len(piece) == 1 else piece or None
        table = self.table

        def translate(text: str) -> str:
            return text.translate(bmp if _BEYOND_BMP(text) is None else table)

        return translate

    def offsets(self, text: str) -> list[int]:
        """Cumulative normalised lengths: raw char `i` yields `normalize(text)[c[i-1]:c[i]]`.

        Built from the piece lengths (`lengths`), so no Python loop runs per char; `raw_index`
        turns a normalised position back into a raw one by binary search.
        """
        return list(accumulate(self.lengths(text)))

    def lengths(self, text: str) -> bytes:
        """How many characters each character of `text` becomes, a byte each.

        Read through a translate table of lengths: for ASCII a `bytes.translate`; otherwise a
        list over the Basic Multilingual Plane (a list index is cheaper than a dict lookup) and,
        when a character beyond it is left as it is (`latin-1` refuses it), the lazy `widths`.
        """
        if text.isascii():
            return text.encode("ascii").translate(self._ascii_lengths)
        try:
            return text.translate(self._bmp_lengths).encode("latin-1")
        except UnicodeEncodeError:
            return text.translate(self.widths).encode("latin-1")

    @cached_property
    def _ascii_lengths(self) -> bytes:
        """A `bytes.translate` table: 0 for an ASCII character normalisation deletes, else 1."""
        deleted = self.ascii_tables[1]
        return bytes(0 if code in deleted else 1 for code in range(256))

    @cached_property
    def _bmp_lengths(self) -> list[int]:
        """The piece length of every character of the Basic Multilingual Plane, by code."""
        lengths = [1] * 0x10000
        for char, piece in self.changes().items():
            lengths[ord(char)] = len(piece)
        return lengths

    @cache  # noqa: B019 - normalizers live as long as the process (see `normalizer`)
    def changes(self) -> dict[str, str]:
        """Every character of the Basic Multilingual Plane that this normalisation changes.

        Found for the whole plane in one call per step: every step maps a character on its
        own, so it maps the plane's characters joined by NUL as it maps each alone. NUL is left
        alone by every step and made by none, and NFKC neither composes with it nor reorders
        across it. Asking `piece` character by character took 0.08 s, in every worker of every
        run; a piece that NFKC or case folding takes beyond the plane is still asked that way.
        """
        steps = self.steps
        plane = _plane_but_nul()
        text = "\0".join(plane)
        if "nfkc" in steps:
            text = unicodedata.normalize("NFKC", text)
        if "confusables" in steps:
            text = text.translate(_CONFUSABLES_TABLE)
        if "case" in steps:
            text = text.casefold()
        beyond = {
            plane[text.count("\0", 0, hit.start())] for hit in _BEYOND_BMP_CHAR.finditer(text)
        }
        simplified, digits, separators = _bmp_steps()
        chosen = [
            table
            for step, table in (
                ("traditional", simplified),
                ("digits", digits),
                ("leet", _LEET_TABLE),
                ("separators", separators),
            )
            if step in steps
        ]
        if chosen:  # the tables one after another, as one table
            composed: dict[int, str] = {}
            for code in set().union(*chosen):
                piece = chr(code)
                for table in chosen:
                    piece = piece.translate(table)
                composed[code] = piece
            text = text.translate(composed)
        found = {}
        for char, piece in zip(plane, text.split("\0"), strict=True):
            if piece != char and char not in beyond:
                found[char] = piece
        for char in beyond:
            if (piece := self.piece(char)) != char:
                found[char] = piece
        return found

    def explain(self, raw: str, term: str) -> tuple[str, ...]:
        """The fewest steps under which `raw` and `term` normalise alike: the ones that mattered."""
        return _explain(self.steps, raw, term)


@cache
def normalizer(steps: tuple[str, ...]) -> Normalizer:
    """The shared normalizer of a combination of steps (its tables fill up as texts pass)."""
    return Normalizer(steps)


@lru_cache(maxsize=16_384)
def _explain(steps: tuple[str, ...], raw: str, term: str) -> tuple[str, ...]:
    for size in range(len(steps) + 1):
        for subset in combinations(steps, size):
            each = normalizer(subset)
            if each.normalize(raw) == each.normalize(term):
                return subset
    return tuple(step for step in steps if normalizer((step,)).normalize(raw) != raw)


# The fullwidth forms of printable ASCII (`ＡＢＣ`, `１２３`, `（`), each to its ASCII letter: what
# `nfkc` does to them, one to one, for regular expressions, which run on the raw text's
# characters rather than on the normalised text.
_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_FULLWIDTH_CHAR = re.compile("[\uff01-\uff5e]").search
_FULLWIDTH_TOKEN = re.compile(r"\\.|[\uff01-\uff5e]", re.DOTALL)


def fold_width(text: str) -> str:
    """`text` with its fullwidth ASCII forms as ASCII (same length: offsets stay raw offsets)."""
    if text.isascii() or _FULLWIDTH_CHAR(text) is None:
        return text
    return text.translate(_FULLWIDTH)


def width_folded(regex: re.Pattern[str]) -> re.Pattern[str]:
    """`regex` with each fullwidth ASCII form it names (alone, escaped or in a class) as the
    ASCII character it stands for, so that it matches `fold_width`'s text as it matched the
    characters it was written in; `regex` itself when it names none or the folded expression
    does not compile (`[{-ａ]` became a range written backwards)."""
    source = regex.pattern
    if source.isascii() or _FULLWIDTH_CHAR(source) is None:
        return regex

    def literal(token: re.Match[str]) -> str:
        char = token.group()[-1]
        if not "\uff01" <= char <= "\uff5e":
            return token.group()
        return re.escape(chr(ord(char) - 0xFEE0))

    try:
        return re.compile(_FULLWIDTH_TOKEN.sub(literal, source), regex.flags)
    except (re.error, OverflowError, RecursionError):
        return regex
