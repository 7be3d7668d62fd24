"""E-mail addresses: a dot-atom local part, `@`, and a domain with a letter top-level label."""

from __future__ import annotations

import re

from auditor.policies.detectors.interface import Detector

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"


class EmailDetector(Detector):
    name = "email"
    description = "E-mail address"
    pattern = re.compile(
        rf"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{{1,64}}@(?:{_LABEL}\.)+[A-Za-z]{{2,24}}"
        r"(?![A-Za-z0-9-])"
    )
    literals = ("@",)
    base_confidence = "high"
    context_words = ("邮箱", "邮件", "mail")

    def canonical(self, raw: str) -> str:
        return raw.lower()

    def is_valid(self, value: str) -> bool:
        local = value.split("@", 1)[0]
        return not (local.startswith(".") or local.endswith(".") or ".." in local)
