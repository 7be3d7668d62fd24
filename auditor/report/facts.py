"""The few values the report reads from each record (`RecordFacts`), compiled with mypyc.

A worker reads them from every record it archives and hands them on in the record's spool
header, so the coordinator counts a record without parsing it again (`ReportBuilder.observe_facts`).
Interpreted, these dozen lookups were a worker's "report facts" step, about 10,500 instructions
a record (bench/bench_instructions.py); compiled with the policy engine (pyproject.toml's
`compiled`), the same source does them in C API calls. `AUDITOR_PURE_PYTHON=1` leaves it
interpreted, with the same results (tests/test_compiled.py compares the two).
"""

from __future__ import annotations

from typing import Any

import orjson

from auditor.records import LATEST_MS, msg_id, timestamp_ms

# (msg_id, timestamp ms, message type, chat type, sender). A plain tuple, as it is built for
# every record.
RecordFacts = tuple[str | None, int | None, str, str, str | None]


def record_facts(record: dict[str, Any]) -> RecordFacts:
    """The record's `RecordFacts`: `records.msg_id`, `timestamp_ms`, `message_type` and `sender`
    (the last two read here with one look at the payload, `records.body_type` inlined, and a
    string msg_id, an integer timestamp and a string sender taken as they are)."""
    payload = record.get("payload")
    if not isinstance(payload, dict):
        payload = {}
    kind = "none"
    found = payload.get("bodies")
    if isinstance(found, list):
        for body in found:
            if isinstance(body, dict):
                if body.get("subType") == "sub_combine":
                    kind = "combine"
                else:
                    named = body.get("type")
                    kind = named if isinstance(named, str) and named else "unknown"
                break
    chat = record.get("chat_type")
    who = payload.get("from") or record.get("from")
    key = record.get("msg_id")
    sent = record.get("timestamp")
    return (
        key if type(key) is str else msg_id(record),
        sent if type(sent) is int and 0 <= sent < LATEST_MS else timestamp_ms(record),
        kind,
        chat if isinstance(chat, str) else "unknown",
        who if type(who) is str else str(who) if who is not None else None,
    )


def archived_facts(record: dict[str, Any], canonical: bytes) -> RecordFacts:
    """The record's `RecordFacts` as read back from its canonical bytes, as the archive keeps it.

    They differ from the record as received only where RFC 8785 rewrote a number: a msg_id or
    sender sent as the float 5.0 reads back as the integer 5. Only then are the bytes parsed.
    """
    payload = record.get("payload")
    if (
        type(record.get("msg_id")) is float
        or type(record.get("from")) is float
        or (isinstance(payload, dict) and type(payload.get("from")) is float)
    ):
        record = orjson.loads(canonical)
    return record_facts(record)
