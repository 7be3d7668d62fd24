"""Character references and percent-escapes decoded, each decoded character with its raw span.

A term can be typed so that a browser, a mail client or a pasted link shows it while the text
holds none of its characters: `&#27927;&#38065;` and `&#x6d17;&#x94b1;` display as 洗钱,
`%E6%B4%97%E9%92%B1` is 洗钱 in a link, `kick&#98;ack` and `kick%62ack` are kickback. The
`decode` step reads such a text as shown: numeric references (decimal or hex, the `;` optional
as browsers take it), named ones with their `;` (`&amp;`), and runs of percent-escapes read as
UTF-8 (a byte that starts no valid sequence stays as written). Unlike the other steps it is no
character-to-character map, so it runs apart from them, only on a text holding `&` or `%`
(`may_hold_escapes`), and gives the raw span each decoded character came from.
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


class Decoded(NamedTuple):
    """`text` with its escapes decoded; decoded character `i` came from raw `[starts[i],
    ends[i])`, and `escapes` are the raw spans of the escapes that were decoded."""

    text: str
    starts: list[int]
    ends: list[int]
    escapes: list[tuple[int, int]]


def may_hold_escapes(text: str) -> bool:
    """The cheap test (two substring searches) a text passes before `decoded` is asked."""
    return "&" in text or "%" in text


def decoded(text: str) -> Decoded | None:
    """`text` with its escapes decoded, or None when it holds none."""
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    escapes: list[tuple[int, int]] = []
    at = 0
    for match in _ESCAPE.finditer(text):
        start, end = match.span()
        spans = _decode(match.group(), start)
        if not spans:
            continue
        pieces.append(text[at:start])
        starts.extend(range(at, start))
        ends.extend(range(at + 1, start + 1))
        for piece, piece_start, piece_end in spans:
            pieces.append(piece)
            starts.extend([piece_start] * len(piece))
            ends.extend([piece_end] * len(piece))
        escapes.append((start, end))
        at = end
    if not escapes:
        return None
    pieces.append(text[at:])
    starts.extend(range(at, len(text)))
    ends.extend(range(at + 1, len(text) + 1))
    return Decoded("".join(pieces), starts, ends, escapes)


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
