"""Findings for what the synthetic history planted, shaped as validation and policies give them.

The report's tests and benchmark need realistic finding streams (schema findings with pointers and
records, keyword findings with exact spans in Chinese and English, PII, retention, holds) without
running the other stages; `planted_findings(truth)` derives them from `SyntheticHistory.truth(i)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from auditor.emulator.dataset import DEFECTS, EVASIONS_EN, EVASIONS_ZH, KEYWORDS_ZH, RecordTruth
from auditor.records import bodies, msg_id

_PII = {
    "mobile": re.compile(r"1[3-9]\d{9}"),
    "resident_id": re.compile(r"\d{17}[\dX]"),
    "resident_id_invalid": re.compile(r"\d{17}[\dX]"),
    "bank_card": re.compile(r"\d{16,19}"),
    "bank_card_invalid": re.compile(r"\d{16,19}"),
    "email": re.compile(r"[\w.]+@[\w.]+"),
    "ipv4": re.compile(r"\d+\.\d+\.\d+\.\d+"),
    "url": re.compile(r"https?://\S+"),
}
_NORMALIZATIONS = {
    "plain": [],
    "separator": ["separators"],
    "space": ["separators"],
    "zero_width": ["separators"],
    "traditional": ["traditional"],
    "case": ["case"],
    "fullwidth": ["nfkc", "case"],
}


def _texts(record: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(JSON Pointer, text) of the body fields a keyword scan reads."""
    for position, body in enumerate(bodies(record)):
        for field in ("msg", "summary"):
            value = body.get(field)
            if isinstance(value, str):
                yield f"/payload/bodies/{position}/{field}", value


def _locate(record: dict[str, Any], written: str) -> tuple[str, str, int] | None:
    for pointer, text in _texts(record):
        start = text.find(written)
        if start >= 0:
            return pointer, text, start
    return None


def planted_findings(truth: RecordTruth) -> list[dict[str, Any]]:
    """The findings a correct validator and policy engine report for record `truth.index`."""
    record = truth.record
    key = msg_id(record)
    found: list[dict[str, Any]] = []
    if truth.defect:
        found.append(
            {
                "msg_id": key,
                "category": "schema",
                "rule": "https://schemas.easemob-auditor.dev/record/envelope.json",
                "severity": "medium",
                "message": f"planted defect {truth.defect}",
                "pointer": DEFECTS[truth.defect],
                "details": {
                    "keyword": truth.defect,
                    "type": "",
                    "profile": "loose",
                    "record": record,
                },
            }
        )
    for term in truth.keywords:
        chinese = term in KEYWORDS_ZH
        evasions = EVASIONS_ZH if chinese else EVASIONS_EN
        written = evasions[truth.evasion or "plain"](term)
        place = _locate(record, written)
        if place is None:
            continue
        pointer, text, start = place
        found.append(
            {
                "msg_id": key,
                "category": "keyword",
                "rule": "finance-zh" if chinese else "finance-en",
                "severity": "high",
                "message": f"matched {term!r} in {pointer}",
                "pointer": pointer,
                "details": {
                    "list": "finance-zh" if chinese else "finance-en",
                    "term": term,
                    "matched": written,
                    "start": start,
                    "end": start + len(written),
                    "normalizations": _NORMALIZATIONS[truth.evasion or "plain"],
                    "text": text,
                },
            }
        )
    for kind in truth.pii:
        for pointer, text in _texts(record):
            match = _PII[kind].search(text)
            if match:
                found.append(
                    {
                        "msg_id": key,
                        "category": "pii",
                        "rule": kind.removesuffix("_invalid"),
                        "severity": "low" if kind.endswith("_invalid") else "medium",
                        "message": f"{kind} in {pointer}",
                        "pointer": pointer,
                        "details": {
                            "detector": kind.removesuffix("_invalid"),
                            "term": kind,
                            "matched": match.group(),
                            "start": match.start(),
                            "end": match.end(),
                            "normalizations": [],
                            "confidence": "low" if kind.endswith("_invalid") else "high",
                            "text": text,
                        },
                    }
                )
                break
    return found
