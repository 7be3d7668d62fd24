"""Web addresses: `http://`, `https://` or `www.` followed by a host with a dot."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from auditor.policies.detectors.interface import Detector

_BODY = "[^\\s<>\"'，。、；！？）】」]"
_LAST = "[^\\s<>\"'，。、；！？）】」.,;:!?)\\]}]"  # a sentence's full stop is not part of the URL


# An ASCII host name and maybe a port, then the path: what `urlsplit` would take for the host
# (it lowercases it, which no dot minds), a few times faster. Anything else goes to `urlsplit`.
_PLAIN_HOST = re.compile(r"[Hh][Tt][Tt][Pp][Ss]?://([A-Za-z0-9.-]+)(?::[0-9]*)?(?=[/?#]|\Z)").match


class UrlDetector(Detector):
    name = "url"
    description = "URL (http, https or www.)"
    pattern = re.compile(
        rf"[HhWw](?<![A-Za-z0-9][HhWw])(?:(?<=[Hh])[Tt][Tt][Pp][Ss]?://|(?<=[Ww])[Ww]{{2}}\.)"
        rf"{_BODY}*{_LAST}"
    )
    literals = ("://", "www.", "WWW.")
    base_confidence = "high"
    context_words = ("链接", "网址", "link", "url")

    def is_valid(self, value: str) -> bool:
        if value[:4].lower() == "www.":
            value = "http://" + value
        plain = _PLAIN_HOST(value)
        if plain is not None:
            return "." in plain.group(1).strip(".")
        try:
            parts = urlsplit(value)
            host = parts.hostname or ""
        except ValueError:
            return False
        return parts.scheme.lower() in ("http", "https") and "." in host.strip(".")
