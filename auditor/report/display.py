"""How the report writes instants, zones and quoted text, so every format says them the same way."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from markupsafe import Markup, escape

from auditor.partitions import format_instant
from auditor.report.catalogue import Phrase


def zone_name(tz: timezone) -> str:
    """`UTC` or `UTC+08:00`: the zone named the way a reader outside the team understands it."""
    offset = tz.utcoffset(None) or timedelta(0)
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local_time(timestamp_ms: int | None, tz: timezone, seconds: bool = True) -> str:
    """An instant in the report's zone with its offset, e.g. `2026-11-01 08:00:00 +08:00`."""
    if timestamp_ms is None:
        return ""
    try:
        moment = datetime.fromtimestamp(timestamp_ms / 1000, UTC).astimezone(tz)
    except (OverflowError, ValueError):  # the zone shifts it past year 1 or 9999: say it in UTC
        return utc_time(timestamp_ms)
    text = moment.replace(tzinfo=None).isoformat(" ", "seconds" if seconds else "minutes")
    return f"{text} {zone_name(tz)[3:] or '+00:00'}"


def utc_time(timestamp_ms: int | None) -> str:
    return "" if timestamp_ms is None else format_instant(timestamp_ms)


def instant(value: Any, tz: timezone) -> str:
    """A finding's time value (UTC ms or already a string) as the report shows it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return local_time(value, tz)
    return clip(value, 64)


def clip(value: Any, limit: int) -> str:
    """Any value as text of at most `limit` characters, so one odd record cannot bloat the page."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


LABEL_CHARS = 80


def label(value: Any, limit: int = LABEL_CHARS) -> str:
    """A name from the data (a body type, chat type, sender, ID) of at most `limit` characters,
    saying its whole length when it is cut: a 200,000-character body type must not cost the page
    200 KB each time it is named, and the reader must see it was cut."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return Phrase("{text}… (cut: {count:,} characters)", text=text[:limit], count=len(text))


def summary_name(value: Any) -> str:
    """A name from the data as `summary.json` gives it: as the page shows it (`label`), and
    when cut, with the first 64 bits of its SHA-256, since there it is a key or a row's name
    and two long names that begin alike must stay two. A lying server's megabyte-long user
    ids made the file megabytes; the archive holds every name whole."""
    text = "" if value is None else (value if isinstance(value, str) else str(value))
    if len(text) <= LABEL_CHARS:
        return text
    digest = hashlib.sha256(text.encode(errors="surrogatepass")).hexdigest()[:16]
    return f"{text[:LABEL_CHARS]}… (cut: {len(text):,} characters, sha256 {digest}…)"


def clip_drawn(value: Any, limit: int) -> str:
    """`clip` counting each character the page draws as a badge (`⟨U+200B⟩`) as eight wide and
    each wide one (a Han character, a fullwidth letter) as two, for a chart label that has only
    so much room."""
    text = "" if value is None else (value if isinstance(value, str) else str(value))
    always, names_only = _hidden_points()
    hidden = always | names_only
    width = 0
    for index, char in enumerate(text):
        width += (
            8 if ord(char) in hidden else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        )
        if width > limit - 1 and index + 1 < len(text):
            return text[:index] + "…"
    return text


_CHINESE = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff60\U00020000-\U0002ffff"
# an element or a whole <svg> (whose text an HTML span would hide) is passed over; a run of
# Chinese characters and punctuation, spaces between them included, is marked
_ANY_CHINESE = re.compile(f"[{_CHINESE}]")
_CHINESE_RUNS = re.compile(
    f"(<svg\\b.*?</svg>|<[^>]*>)|([{_CHINESE}]+(?: +[{_CHINESE}]+)*)", re.DOTALL
)


def mark_chinese(html: str) -> Markup:
    """Escaped HTML with each run of Chinese text in a `<span lang="zh">`, so a screen reader
    speaks it in a Chinese voice (an English one skips it or spells "Chinese letter") and the
    browser draws it in a CJK font, while English beside it in the same cell stays English.

    Escaping leaves no `<` or `>` inside an element's attributes, so a tag ends at its first `>`.
    """
    if _ANY_CHINESE.search(html) is None:
        return Markup(html)
    return Markup(_CHINESE_RUNS.sub(_mark_run, html))


def _mark_run(found: re.Match[str]) -> str:
    return found.group(1) or f'<span lang="zh">{found.group(2)}</span>'


# -- characters a reader cannot see -----------------------------------------------------------
#
# A msg_id with a zero-width space looks like another; U+202E turns "00.001$" into "$100.00".
# The page shows every such character as a small badge naming its code point (`U+202E`), so two
# different strings never render alike and no bidi control reorders what follows it.

# Invisible or blank though not in a format/control category: combining grapheme joiner, Hangul
# fillers, Khmer inherent vowels, Mongolian variation selectors, the braille blank.
_INVISIBLE = (0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180F, 0x2800,
              0x3164, 0xFFA0)  # fmt: skip
_VARIATION = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF))
_JOINERS = "\u200c\u200d"  # join emoji and scripts: left alone inside message text
_TEXT_WHITESPACE = "\n\t"  # message text is shown with its line breaks and tabs
_NAMES = {0x09: "CHARACTER TABULATION", 0x0A: "LINE FEED", 0x0D: "CARRIAGE RETURN", 0x20: "SPACE"}
BADGE_CLASS = "cf"


def _ranges(points: list[int] | frozenset[int]) -> str:
    """A regex character class body for these code points, as ranges."""
    points = sorted(points)
    parts: list[str] = []
    start = None
    for index, point in enumerate(points):
        if start is None:
            start = point
        if index + 1 == len(points) or points[index + 1] != point + 1:
            parts.append(f"\\U{start:08x}" + (f"-\\U{point:08x}" if point != start else ""))
            start = None
    return "".join(parts)


@functools.cache
def _hidden_points() -> tuple[frozenset[int], frozenset[int]]:
    """(marked in every string, marked outside message text too): controls, format characters,
    lone surrogates, line and paragraph separators and the invisible letters above; then the
    spaces other than U+0020 and the variation selectors, which message text uses legitimately."""
    always, names_only = list(_INVISIBLE), []
    for point in [*range(0x20000), *range(0xE0000, 0xE1000)]:
        category = unicodedata.category(chr(point))
        if category in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            always.append(point)
        elif category == "Zs" and point != 0x20:
            names_only.append(point)
    always.extend(range(0x13430, 0x13440))  # Egyptian format controls (Unicode 15)
    for first, last in _VARIATION:
        names_only.extend(range(first, last + 1))
    return frozenset(always), frozenset(names_only)


@functools.cache
def _pattern(mode: str) -> re.Pattern[str]:
    always, names_only = _hidden_points()
    if mode == "text":
        points = [p for p in always if chr(p) not in _TEXT_WHITESPACE]
        # a subdivision flag (black flag, tag letters, cancel tag) is one emoji, not smuggled text
        return re.compile(f"\U0001f3f4[\U000e0020-\U000e007e]{{1,8}}\U000e007f|[{_ranges(points)}]")
    if mode == "block":
        points = [p for p in always | names_only if p != 0x0A]
        return re.compile(f"[{_ranges(points)}]")
    # a name or ID: also a space that starts or ends it or follows another space, which HTML
    # would fold away ("alice " and "alice" must not look alike)
    return re.compile(f"^ | $|(?<= ) |[{_ranges(list(always | names_only))}]")


def character_name(char: str) -> str:
    """`U+202E RIGHT-TO-LEFT OVERRIDE`, the badge's title."""
    point = ord(char)
    if 0xD800 <= point <= 0xDFFF:
        name = "LONE SURROGATE"
    else:
        name = _NAMES.get(point) or unicodedata.name(char, "") or "CONTROL CHARACTER"
    return f"U+{point:04X} {name}"


def _html_badge(char: str) -> str:
    # no quotes: a badge that ever landed inside an attribute value could not end it
    title = character_name(char).replace(" ", "&#32;")
    return f"<span class={BADGE_CLASS} title={title}>U+{ord(char):04X}</span>"


def _svg_badge(char: str) -> str:
    return f'<tspan class="{BADGE_CLASS}">\u27e8U+{ord(char):04X}\u27e9</tspan>'


def visible(value: Any, mode: str = "name", svg: bool = False) -> Any:
    """`value` escaped for HTML with every invisible character shown as a badge (Markup), or
    `value` unchanged when it has none (the template escapes it then).

    `mode` is `name` for IDs, senders, rule names and the like (everything is marked, zero-width
    joiners and non-ASCII spaces too), `text` for message text (line breaks, tabs and joiners
    between non-ASCII letters stay as written) or `block` for preformatted text (line breaks
    stay). `svg` draws the badges as `<tspan>`s, for chart labels.
    """
    if not isinstance(value, str) or isinstance(value, Markup):
        return value
    pattern = _pattern(mode)
    if pattern.search(value) is None:
        return value
    badge = _svg_badge if svg else _html_badge
    parts: list[str] = []
    position = 0
    for found in pattern.finditer(value):
        start, end = found.span()
        if end - start > 1 or (mode == "text" and _joins(value, start)):
            continue  # a flag emoji, or a joiner between letters: left as written
        parts.append(str(escape(value[position:start])))
        parts.append(badge(value[start]))
        position = end
    parts.append(str(escape(value[position:])))
    return Markup("".join(parts))


def _joins(text: str, at: int) -> bool:
    """Whether the character at `at` is a ZWJ/ZWNJ between two non-ASCII characters (an emoji
    sequence or a script that needs it) rather than one hidden in an ASCII word or at an end."""
    if text[at] not in _JOINERS or at == 0 or at + 1 == len(text):
        return False
    before, after = text[at - 1], text[at + 1]
    return before > "\x7f" and after > "\x7f" and before not in _JOINERS and after not in _JOINERS
