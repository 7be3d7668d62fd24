"""The emulator's synthetic chat history: deterministic, random-access, never held in memory.

Record `i` of a history is a pure function of `(seed, i)`, so the emulator can serve any hour,
a test can compute the ground truth of any window, and a benchmark can stream a million records,
all without storing the history. Timestamps grow with `i` (each record owns a time slot), so the
records of a window are found by binary search.

Besides well-formed records of every body type, the history plants, at known rates:
schema defects (`DEFECTS`, each with the JSON Pointer a validator must report), loose-but-real
encodings (numbers as strings, `customExts` as a list, `ext` absent), keyword terms in Chinese and
English with evasions (`KEYWORDS_ZH`, `KEYWORDS_EN`), PII with valid and invalid checksums, and
records at exactly `HH:00:00.000` and `HH:59:59.999`. `truth(i)` says what was planted.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from auditor.partitions import DAY_MS, HOUR_MS

DEFAULT_START_MS = 1_793_491_200_000  # 2026-11-01T00:00:00Z
DEFAULT_SEED = 7

# How msg_ids relate to the records' order (`SyntheticHistory.msg_id`). `ordered`, the default,
# grows with the record's index, so every index a client keeps by msg_id gets its rows in key
# order; real Easemob ids are snowflake-style (time-ordered only roughly), and an export may come
# in any order, which is what the other two are for.
MSG_ID_ORDERS = ("ordered", "snowflake", "random")
SNOWFLAKE_SERVERS = 8
SNOWFLAKE_SKEW_MS = 90_000  # each server's clock is off by up to this much either way
SNOWFLAKE_EPOCH_MS = 1_577_836_800_000  # 2020-01-01: ids of 2020 to mid-2027 have 18 digits
_RANDOM_BITS = 59  # 10**17 + 2**59 < 10**18: a random msg_id has 18 digits, as Easemob's

KEYWORDS_ZH = ("内幕消息", "内幕交易", "洗钱", "回扣", "保本保息", "代开发票")
KEYWORDS_EN = (
    "insider tip",
    "kickback",
    "guaranteed return",
    "wire it offshore",
    "delete this chat",
)

# Each evasion turns a term into what a user might type to slip past a naive filter, and names
# the normalisation that undoes it.
EVASIONS_ZH = {
    "plain": lambda t: t,
    "separator": lambda t: "*".join(t),
    "space": lambda t: " ".join(t),
    "zero_width": lambda t: "\u200b".join(t),
    "traditional": lambda t: t.translate(str.maketrans("内钱发扣", "內錢發釦")),
}
EVASIONS_EN = {
    "plain": lambda t: t,
    "case": lambda t: t.upper(),
    "fullwidth": lambda t: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in t),
    "separator": lambda t: "-".join(t),
}

PHRASES_ZH = (
    "今天下午三点开会",
    "收到，谢谢",
    "这个方案我再看看",
    "客户那边已经确认了",
    "明天出差去上海",
    "报表发你邮箱了",
    "晚上一起吃饭吗",
    "合同需要法务再审一下",
    "好的没问题",
    "请尽快回复",
    "项目进度有点慢",
    "周末加班吗",
    "发票已经寄出",
    "这周的数据出来了",
    "老板说下周再议",
)
PHRASES_EN = (
    "see you at the standup",
    "thanks, got it",
    "can you review the draft",
    "the client signed off",
    "running ten minutes late",
    "numbers are in the shared folder",
    "let's sync tomorrow",
    "ok",
    "please call me back",
    "the release slipped to Friday",
    "lunch?",
    "sounds good",
)
ADDRESSES = (
    "北京市海淀区北四环西路66号",
    "上海市浦东新区世纪大道100号",
    "广州市天河区珠江新城",
    "1 Infinite Loop, Cupertino",
    "深圳市南山区科技园",
)

# name -> (JSON Pointer the validator must report, relative to the record)
DEFECTS: dict[str, str] = {
    "lat_out_of_range": "/payload/bodies/0/lat",
    "negative_length": "/payload/bodies/0/length",
    "img_missing_url": "/payload/bodies/0",
    "bad_chat_type": "/chat_type",
    "missing_timestamp": "",
    "msg_not_string": "/payload/bodies/0/msg",
    "url_not_uri": "/payload/bodies/0/url",
    "unknown_body_type": "/payload/bodies/0/type",
    "empty_bodies": "/payload/bodies",
    "missing_msg_id": "",
}

BODY_WEIGHTS = (
    ("txt", 58),
    ("img", 10),
    ("loc", 5),
    ("audio", 7),
    ("video", 4),
    ("file", 4),
    ("cmd", 3),
    ("custom", 5),
    ("combine", 4),
)
CHAT_WEIGHTS = (("chat", 65), ("groupchat", 30), ("chatroom", 5))
USERS = 400
GROUPS = 40


@dataclass(frozen=True, slots=True)
class RecordTruth:
    """What the generator planted in record `index`, for tests to compare against."""

    index: int
    record: dict[str, Any]
    defect: str | None = None
    keywords: tuple[str, ...] = ()
    evasion: str | None = None
    pii: tuple[str, ...] = ()
    loose: tuple[str, ...] = ()
    attachments: tuple[str, ...] = field(default=())


def _mix(seed: int, value: int) -> int:
    """A deterministic 64-bit hash of (seed, value), for choices that must not use `random`."""
    digest = hashlib.blake2b(f"{seed}:{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _scramble(index: int, seed: int) -> int:
    """A bijection of [0, 2**_RANDOM_BITS) that scatters consecutive indices: odd multipliers
    and xor-shifts are each invertible modulo a power of two, so no two records share an id."""
    mask = (1 << _RANDOM_BITS) - 1
    value = (index + seed * 0x9E37_79B9) & mask
    for multiplier in (0x5851_F42D_4C95_7F2D, 0x2545_F491_4F6C_DD1D):
        value = (value * multiplier) & mask
        value ^= value >> 29
    return value


def _weighted(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([name for name, _ in table], [weight for _, weight in table])[0]


def resident_id(rng: random.Random, valid: bool = True) -> str:
    """An 18-character PRC resident ID (GB 11643-1999); `valid=False` breaks its check digit."""
    area = rng.choice(("110108", "310115", "440305", "510107"))
    birth = f"{rng.randint(1960, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = area + birth + f"{rng.randint(0, 999):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    if not valid:
        check = "10X98765432"[("10X98765432".index(check) + 1) % 11]
    return body + check


def bank_card(rng: random.Random, valid: bool = True) -> str:
    """A 16- or 19-digit UnionPay-style card number, its Luhn check digit broken if not valid."""
    length = rng.choice((16, 19))
    digits = "622848" + "".join(str(rng.randint(0, 9)) for _ in range(length - 7))
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    check = (10 - total % 10) % 10
    if not valid:
        check = (check + 1) % 10
    return digits + str(check)


def _pii(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(
        (
            "mobile",
            "resident_id",
            "resident_id_invalid",
            "bank_card",
            "bank_card_invalid",
            "email",
            "ipv4",
            "url",
        )
    )
    if kind == "mobile":
        value = f"1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}"
        return kind, f"我的手机号是{value}"
    if kind.startswith("resident_id"):
        return kind, f"身份证号码 {resident_id(rng, valid=kind == 'resident_id')}"
    if kind.startswith("bank_card"):
        return kind, f"card no. {bank_card(rng, valid=kind == 'bank_card')} please"
    if kind == "email":
        return kind, f"mail me at user{rng.randint(1, 999)}@example.com"
    if kind == "ipv4":
        return (
            kind,
            f"server is 10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        )
    return kind, f"see https://files.example.com/d/{rng.randint(1000, 9999)}"


class SyntheticHistory:
    """A deterministic history of `messages` records spread over `days` days from `start_ms`."""

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        messages: int = 10_000,
        days: int = 1,
        start_ms: int = DEFAULT_START_MS,
        org: str = "demo-org",
        app: str = "demo-app",
        file_host: str = "https://a1.easemob.com",
        defect_rate: float = 0.02,
        keyword_rate: float = 0.06,
        pii_rate: float = 0.04,
        msg_id_order: str = "ordered",
    ) -> None:
        if messages < 0 or days < 1:
            raise ValueError("messages must be >= 0 and days >= 1")
        if msg_id_order not in MSG_ID_ORDERS:
            raise ValueError(f"msg_id_order must be one of {', '.join(MSG_ID_ORDERS)}")
        if start_ms % HOUR_MS:
            raise ValueError("start_ms must be on an hour boundary")
        self.seed = seed
        self.messages = messages
        self.days = days
        self.start_ms = start_ms
        self.end_ms = start_ms + days * DAY_MS
        self.org = org
        self.app = app
        self.file_host = file_host.rstrip("/")
        self.defect_rate = defect_rate
        self.keyword_rate = keyword_rate
        self.pii_rate = pii_rate
        self.msg_id_order = msg_id_order
        self._span = self.end_ms - start_ms

    def __len__(self) -> int:
        return self.messages

    # -- time -------------------------------------------------------------------------------

    def _slot(self, index: int) -> tuple[int, int]:
        low = self.start_ms + index * self._span // self.messages
        high = self.start_ms + (index + 1) * self._span // self.messages
        return low, max(high, low + 1)

    def timestamp(self, index: int) -> int:
        """Send time of record `index`: in its own slot, on an hour edge when the slot holds one."""
        low, high = self._slot(index)
        boundary = -(-low // HOUR_MS) * HOUR_MS
        if boundary < high:
            return boundary
        if (high - 1) % HOUR_MS == HOUR_MS - 1 and high - 1 > low:
            return high - 1
        mix = (index * 2_654_435_761 + self.seed * 40_503) & 0xFFFFFFFF
        return low + mix % (high - low)

    def index_range(self, since_ms: int, until_ms: int) -> range:
        """Indices of the records whose timestamp lies in `[since_ms, until_ms)`."""
        return range(self._first_at_or_after(since_ms), self._first_at_or_after(until_ms))

    def _first_at_or_after(self, instant: int) -> int:
        low, high = 0, self.messages
        while low < high:
            middle = (low + high) // 2
            if self.timestamp(middle) < instant:
                low = middle + 1
            else:
                high = middle
        return low

    def records_between(self, since_ms: int, until_ms: int) -> Iterator[dict[str, Any]]:
        for index in self.index_range(since_ms, until_ms):
            yield self.record(index)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index in range(self.messages):
            yield self.record(index)

    # -- identities ---------------------------------------------------------------------------

    def msg_id(self, index: int) -> str:
        """Record `index`'s msg_id, unique in the history, in the order `msg_id_order` names.

        `snowflake` is Easemob's shape: the ms its server's clock showed (since 2020, 41 bits)
        << 22 | server << 12 | a sequence (the index's low 12 bits: unique while fewer than
        4,096 records share a millisecond). Each of `SNOWFLAKE_SERVERS` servers has a clock off
        by its own skew, so the ids of an hour interleave rather than grow with the send time.
        `random` is a keyed bijection of the index, as a legacy export in no order would give.
        """
        if self.msg_id_order == "snowflake":
            server = _mix(self.seed, index) % SNOWFLAKE_SERVERS
            skew = _mix(self.seed, -1 - server) % (2 * SNOWFLAKE_SKEW_MS + 1) - SNOWFLAKE_SKEW_MS
            clock = (self.timestamp(index) + skew - SNOWFLAKE_EPOCH_MS) % (1 << 41)
            return str(clock << 22 | server << 12 | index & 0xFFF)
        if self.msg_id_order == "random":
            return str(10**17 + _scramble(index, self.seed))
        return str(200_000_000_000_000_000 + (self.seed % 1000) * 10_000_000_000 + index)

    def user(self, number: int) -> str:
        return f"user{number:04d}"

    def users(self) -> list[str]:
        return [self.user(number) for number in range(USERS)]

    def group(self, number: int) -> str:
        return str(1_402_541_206_787 + number)

    def attachment_uuid(self, index: int, body: int, thumb: bool = False) -> str:
        """A uuid that encodes where its bytes come from, so the emulator needs no table."""
        value = (0x65E5_4A4A_FD0B_11E3 << 64) | ((self.seed & 0xFFFF) << 48) | (index << 8)
        return str(uuid.UUID(int=value | (body << 1) | int(thumb)))

    def attachment(self, file_uuid: str) -> tuple[bytes, str | None] | None:
        """Bytes and share secret of an attachment this history references, or None."""
        try:
            value = uuid.UUID(file_uuid).int
        except ValueError:
            return None
        if value >> 64 != 0x65E5_4A4A_FD0B_11E3 or (value >> 48) & 0xFFFF != self.seed & 0xFFFF:
            return None
        index, body, thumb = (value >> 8) & 0xFF_FFFF_FFFF, (value >> 1) & 0x7F, value & 1
        if index >= self.messages or self.attachment_uuid(index, body, bool(thumb)) != file_uuid:
            return None
        truth = self.truth(index)
        if file_uuid not in truth.attachments:
            return None
        return self._attachment_bytes(file_uuid), self._secret(file_uuid)

    def _attachment_bytes(self, file_uuid: str) -> bytes:
        digest = hashlib.sha256(f"{self.seed}:{file_uuid}".encode()).digest()
        size = 200 + digest[0] * 8
        return (b"EMULATED-ATTACHMENT\n" + digest * (size // 32 + 1))[:size]

    def _secret(self, file_uuid: str) -> str:
        return hashlib.sha256(f"secret:{self.seed}:{file_uuid}".encode()).hexdigest()[:48]

    def _file_url(self, file_uuid: str) -> str:
        return f"{self.file_host}/{self.org}/{self.app}/chatfiles/{file_uuid}"

    # -- records ------------------------------------------------------------------------------

    def record(self, index: int) -> dict[str, Any]:
        return self.truth(index).record

    def truth(self, index: int) -> RecordTruth:
        if not 0 <= index < self.messages:
            raise IndexError(index)
        rng = random.Random((self.seed << 40) ^ index)
        chat_type = _weighted(rng, CHAT_WEIGHTS)
        sender = self.user(rng.randrange(USERS))
        if chat_type == "chat":
            to = self.user(rng.randrange(USERS))
        else:
            to = self.group(rng.randrange(GROUPS))
        notes: dict[str, Any] = {"keywords": [], "pii": [], "loose": [], "attachments": []}
        body_count = 2 if rng.random() < 0.03 else 1
        bodies = [self._body(rng, index, position, notes) for position in range(body_count)]
        record: dict[str, Any] = {
            "msg_id": self.msg_id(index),
            "timestamp": self.timestamp(index),
            "direction": "outgoing",
            "to": to,
            "from": sender,
            "chat_type": chat_type,
            "payload": {"bodies": bodies, "ext": {}, "from": sender, "to": to},
        }
        roll = rng.random()
        if roll < 0.2:
            del record["payload"]["ext"]
            notes["loose"].append("ext_absent")
        elif roll < 0.35:
            record["payload"]["ext"] = {
                "em_apns_ext": {"em_push_title": "新消息"},
                "trace": rng.randrange(10**6),
            }
        elif roll < 0.37:
            record["timestamp"] = str(record["timestamp"])
            notes["loose"].append("timestamp_string")
        defect = None
        if rng.random() < self.defect_rate:
            defect = self._break(rng, record)
        return RecordTruth(
            index=index,
            record=record,
            defect=defect,
            keywords=tuple(notes["keywords"]),
            evasion=notes.get("evasion"),
            pii=tuple(notes["pii"]),
            loose=tuple(notes["loose"]),
            attachments=tuple(notes["attachments"]),
        )

    def _text(self, rng: random.Random, notes: dict[str, Any]) -> str:
        chinese = rng.random() < 0.6
        phrases = PHRASES_ZH if chinese else PHRASES_EN
        parts = [rng.choice(phrases) for _ in range(rng.randint(1, 4))]
        if rng.random() < self.keyword_rate:
            terms, evasions = (KEYWORDS_ZH, EVASIONS_ZH) if chinese else (KEYWORDS_EN, EVASIONS_EN)
            term = rng.choice(terms)
            evasion = rng.choice(tuple(evasions))
            written = evasions[evasion](term)
            notes["keywords"].append(term)
            notes["evasion"] = evasion
            parts.insert(rng.randrange(len(parts) + 1), written)
        if rng.random() < self.pii_rate:
            kind, text = _pii(rng)
            notes["pii"].append(kind)
            parts.append(text)
        return ("，" if chinese else ", ").join(parts)

    def _body(self, rng: random.Random, index: int, position: int, notes: dict) -> dict[str, Any]:
        kind = _weighted(rng, BODY_WEIGHTS)
        if kind == "txt":
            return {"type": "txt", "msg": self._text(rng, notes)}
        if kind == "loc":
            lat, lng = round(rng.uniform(18, 53), 6), round(rng.uniform(73, 135), 6)
            body: dict[str, Any] = {
                "type": "loc",
                "lat": lat,
                "lng": lng,
                "addr": rng.choice(ADDRESSES),
            }
            if rng.random() < 0.2:
                body["lat"], body["lng"] = str(lat), str(lng)
                notes["loose"].append("latlng_string")
            return body
        if kind == "cmd":
            return {"type": "cmd", "action": rng.choice(("typing", "read_ack", "recall", "sync"))}
        if kind == "custom":
            exts = {
                "orderId": str(rng.randrange(10**8)),
                "amount": f"{rng.randint(1, 9999)}.00",
                "note": self._text(rng, notes),
            }
            body = {"type": "custom", "customEvent": rng.choice(("order", "gift", "card"))}
            if rng.random() < 0.5:
                body["customExts"] = [{key: value} for key, value in exts.items()]
                notes["loose"].append("customExts_list")
            else:
                body["customExts"] = exts
                body["v2:customExts"] = exts
            return body
        file_uuid = self.attachment_uuid(index, position)
        notes["attachments"].append(file_uuid)
        secret = self._secret(file_uuid)
        size = len(self._attachment_bytes(file_uuid))
        if kind == "combine":
            return {
                "type": "txt",
                "subType": "sub_combine",
                "msg": "当前版本过低，无法展示对应内容。",
                "combineLevel": 1,
                "title": "聊天记录",
                "summary": self._text(rng, notes),
                "filename": f"combine-{index}.json",
                "file_length": size,
                "secret": secret,
                "url": self._file_url(file_uuid),
            }
        names = {
            "img": ("IMG_{}.jpg", "照片{}.png"),
            "audio": ("voice_{}.amr", "语音{}.amr"),
            "video": ("VID_{}.mp4", "视频{}.mp4"),
            "file": ("report_{}.pdf", "合同{}.docx"),
        }
        body = {
            "type": kind,
            "url": self._file_url(file_uuid),
            "filename": rng.choice(names[kind]).format(index),
        }
        if kind != "img" or rng.random() < 0.7:
            body["secret"] = secret
        if kind in ("img", "video", "file") or rng.random() < 0.5:
            body["file_length"] = size
        if kind in ("audio", "video"):
            seconds = rng.randint(1, 60)
            body["length"] = seconds
            if rng.random() < 0.1:
                body["length"] = str(seconds)
                notes["loose"].append("length_string")
        if kind in ("img", "video"):
            body["size"] = {
                "width": rng.choice((480, 720, 1080)),
                "height": rng.choice((640, 1280, 1920)),
            }
        if kind == "video":
            thumb = self.attachment_uuid(index, position, thumb=True)
            notes["attachments"].append(thumb)
            body["thumb"] = self._file_url(thumb)
            body["thumb_secret"] = self._secret(thumb)
        return body

    def _break(self, rng: random.Random, record: dict[str, Any]) -> str:
        """Plants one schema defect whose pointer is listed in `DEFECTS`; returns its name."""
        body = record["payload"]["bodies"][0]
        candidates = [
            "bad_chat_type",
            "missing_timestamp",
            "unknown_body_type",
            "empty_bodies",
            "missing_msg_id",
        ]
        by_type = {
            "loc": "lat_out_of_range",
            "audio": "negative_length",
            "video": "negative_length",
            "img": "img_missing_url",
            "txt": "msg_not_string",
            "file": "url_not_uri",
        }
        if body.get("subType") != "sub_combine" and body.get("type") in by_type:
            candidates = [by_type[body["type"]]] * 3 + candidates
        defect = rng.choice(candidates)
        if defect == "lat_out_of_range":
            body["lat"] = round(rng.uniform(91, 180), 6)
        elif defect == "negative_length":
            body["length"] = -rng.randint(1, 60)
        elif defect == "img_missing_url":
            del body["url"]
        elif defect == "bad_chat_type":
            record["chat_type"] = "privatechat"
        elif defect == "missing_timestamp":
            del record["timestamp"]
        elif defect == "msg_not_string":
            body["msg"] = rng.randrange(10**6)
        elif defect == "url_not_uri":
            body["url"] = "not a url"
        elif defect == "unknown_body_type":
            record["payload"]["bodies"][0] = {"type": "sticker", "sticker_id": rng.randrange(100)}
        elif defect == "empty_bodies":
            record["payload"]["bodies"] = []
        elif defect == "missing_msg_id":
            del record["msg_id"]
        return defect
