"""Character references and percent-escapes decoded, each decoded character with its raw span.

A term can be typed so that a browser, a mail client or a pasted link shows it while the text
holds none of its characters: `&#27927;&#38065;` and `&#x6d17;&#x94b1;` display as 洗钱,
`%E6%B4%97%E9%92%B1` is 洗钱 in a link, `kick&#98;ack` and `kick%62ack` are kickback. The
`decode` step reads such a text as shown: numeric references (decimal or hex, the `;` optional
as browsers take it), named ones with their `;` (`&amp;`), and runs of percent-escapes read as
UTF-8 (a byte that starts no valid sequence stays as written). Unlike the other steps it is no
character-to-character map, so it runs apart from them, only on a text holding `&` or `%`
(`may_hold_escapes`), and gives the raw span each decoded character came from.

The `markup` step, which only a list naming it applies, reads markup as a page or a forum shows
it: `敏<b></b>感`, `敏<!-- -->感` and `[b]敏[/b]感` show 敏感. An HTML tag or comment, or a BBCode
tag of the common ones (`[b]`, `[color=red]`, `[/url]`), shows as nothing, but a tag that breaks
the line (`<br>`, `<p>`, `<div>`, `<li>`, ...) shows as one, which the `separators` step then
judges as any line break between two characters. Read together with `decode`, an escaped tag
(`&lt;b&gt;`) shows as the text `<b>` and stays.
"""

from __future__ import annotations

import re
from html import unescape
from typing import NamedTuple

# Both alternatives start with a literal, so the regex engine skips to the next `&` or `%` at its
# fast scan's speed; `(?:%XX)+` first was tried at every position (8 µs for 100 characters of
# text without an escape, against 2 µs).
_ESCAPE = re.compile(
    r"&(?:#[0-9]{1,7};?|#[Xx][0-9A-Fa-f]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};)"
    r"|%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*"
)


_MARKUP = (
    r"<!--[^<>]{0,1024}?-->"  # not across a `<`: 10,000 `<!--` in a row took 0.4 s
    r"|</?[A-Za-z][A-Za-z0-9]{0,15}(?:\s[^<>]{0,256})?/?>"
    r"|\[/?(?:b|i|u|s|color|size|font|url|quote|code|sup|sub)(?:=[^\[\]]{0,64})?\]"
)
_MARKUP_RUN = re.compile(_MARKUP, re.DOTALL | re.IGNORECASE)
_BOTH = re.compile(f"(?P<markup>{_MARKUP})|{_ESCAPE.pattern}", re.DOTALL | re.IGNORECASE)
_LINE_BREAKING = frozenset(
    ("br", "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "tr", "td", "th", "table", "hr")
) | frozenset(("h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote"))
_TAG_NAME = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)").match


class Decoded(NamedTuple):
    """`text` with its escapes decoded (or markup read); decoded character `i` came from raw
    `[starts[i], ends[i])`, `escapes` are the raw spans of the escapes that were decoded and
    `markup` those of the markup that was read."""

    text: str
    starts: list[int]
    ends: list[int]
    escapes: list[tuple[int, int]]
    markup: list[tuple[int, int]]


def may_hold_markup(text: str) -> bool:
    """The cheap test a text passes before `decoded` is asked to read markup."""
    return "<" in text or "[" in text


def _shown_markup(tag: str) -> str:
    """What a tag, comment or BBCode tag shows: a line break or nothing."""
    name = _TAG_NAME(tag)
    return "\n" if name is not None and name.group(1).lower() in _LINE_BREAKING else ""


def may_hold_escapes(text: str) -> bool:
    """The cheap test (two substring searches) a text passes before `decoded` is asked."""
    return "&" in text or "%" in text


def decoded(text: str, escapes_too: bool = True, markup_too: bool = False) -> Decoded | None:
    """`text` with its escapes decoded and, with `markup_too`, its markup read (without
    `escapes_too`, the markup alone); None when it holds none of either."""
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    escapes: list[tuple[int, int]] = []
    markup: list[tuple[int, int]] = []
    at = 0
    runs = (_BOTH if escapes_too else _MARKUP_RUN) if markup_too else _ESCAPE
    for match in runs.finditer(text):
        start, end = match.span()
        if markup_too and (not escapes_too or match.group("markup") is not None):
            spans = [(_shown_markup(match.group()), start, end)]
            markup.append((start, end))
        else:
            spans = _decode(match.group(), start)
            if spans:
                escapes.append((start, end))
        if not spans:
            continue
        pieces.append(text[at:start])
        starts.extend(range(at, start))
        ends.extend(range(at + 1, start + 1))
        for piece, piece_start, piece_end in spans:
            pieces.append(piece)
            starts.extend([piece_start] * len(piece))
            ends.extend([piece_end] * len(piece))
        at = end
    if not escapes and not markup:
        return None
    pieces.append(text[at:])
    starts.extend(range(at, len(text)))
    ends.extend(range(at + 1, len(text) + 1))
    return Decoded("".join(pieces), starts, ends, escapes, markup)


def _decode(escape: str, start: int) -> list[tuple[str, int, int]]:
    """What one escape (or run of percent-escapes) shows, as (text, raw start, raw end) pieces;
    empty when it shows itself (an unknown name, no valid UTF-8 at all)."""
    if escape[0] == "&":
        shown = unescape(escape)
        return [] if shown == escape else [(shown, start, start + len(escape))]
    raw = bytes.fromhex(escape.replace("%", ""))
    pieces = []
    index = 0
    changed = False
    while index < len(raw):
        size = _sequence_length(raw[index])
        chunk = raw[index : index + size]
        try:
            piece = chunk.decode("utf-8") if size else ""
        except UnicodeDecodeError:
            piece = ""
        if piece:
            changed = True
        else:
            size = 1
            piece = escape[3 * index : 3 * index + 3]
        pieces.append((piece, start + 3 * index, start + 3 * (index + size)))
        index += size
    return pieces if changed else []


def _sequence_length(lead: int) -> int:
    """The length of the UTF-8 sequence a lead byte starts (0: no lead byte)."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0
