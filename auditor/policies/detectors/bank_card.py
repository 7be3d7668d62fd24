"""Bank card numbers: 13 to 19 digits (12 to 15 for Maestro next to a card word), plain, in
groups of four or as American Express groups them (4-6-5), with an issuer's prefix and length,
passing the Luhn check, outside web addresses.

People split the groups as their keyboard or word processor lets them (`GROUP_GAP`): a space,
two spaces, a dot, a hyphen, an en or em dash, a minus sign, ` - `, a fullwidth hyphen or an
ideographic space (which the detectors' view makes ASCII), mixed within one number. Two halves
(8-8, or UnionPay's 19 digits as 6-13) are as often two phone, QQ or order numbers side by side,
so they are reported only as `halves_of_a_card` reads them. Digits that a digit and a dot or dash
run into (`1.6222.0212.3456.7894`, `0.6222021234567894`) belong to a longer number.

The Luhn check alone lets one random number in ten through, and chat is full of long numbers
(timestamps, message ids, order and tracking numbers). A card number starts with its scheme's
prefix (ISO/IEC 7812: the first digit names the industry) and has one of its lengths, which
rules out most of those: numbers starting 0, 1 or 7 (epoch-millisecond timestamps and 64-bit
message ids start with 1), `86` and a mobile number, a 14-digit `2026...` timestamp.

The prefixes accepted (`_SCHEMES`): Visa 4 (13, 16, 19 digits); Mastercard 51-55 and 2221-2720
(16); Maestro and other 5s (16-19); American Express 34 and 37 (15); Diners 300-305, 3095 and
36 (14-19); JCB 3528-3589 and Diners 38-39 (16-19); UnionPay 62 and 81, Discover and other 6s
(16-19); and the 9s of national schemes such as China's domestic 9558 cards (16 or 19).

Maestro's 12 to 15-digit numbers (`MAESTRO_PREFIXES`) are as short as many order and QQ numbers,
so one is reported only with a card word (`卡号`, `card`, `maestro`, ...) within
`SHORT_CARD_REACH` characters before or after it, as the old resident ID is.

A number inside a web address is a product, order, article or tracking id, not a card someone
typed: digits preceded, with no space between, by a run of URL characters holding `://`, `www.`
or a host and a slash (`jd.com/`) are not reported. Only the value of a query parameter named as
a card (`?card=`, `&cardNo=`, `&bank_card=`, `&pan=`) is: a form that puts a card number in
its address leaks it as surely as a message would. Other digits of the address (its path, an
`sn=` or `t=` parameter) are not.

A number written right after an identifier's label (`消息ID:`, `msg_id`, `订单号`, `流水号`, `编号`,
`order id`, `ref`, ...; `ID_LABELS`) is named as that identifier: a message id, an order or a
transaction number, which pass the prefix, length and Luhn checks as often as any random number.
It is not reported, unless a card word stands right before the label (`card id`, `银行卡编号`),
where the label may well name the card, or the number is typed as a card (`typed_as_card`): in
groups (of four, American Express's 4-6-5, or halves that `halves_of_a_card` reads as a card),
with a major scheme's prefix and length (`TYPED_SCHEMES`: UnionPay, Visa, Mastercard, American
Express, JCB). Systems print ids as one run of digits, people type cards in groups, so
`ID: 6222 0212 3456 7894` is a card that `ID: 6222021234567894` would not be: a label may not
hide a card, and ids stay quiet however card-like their digits. (A card word elsewhere in the
message does not tell the two apart: `uid 6222021234567894 的银行卡绑定失败` names a user.)

What does tell them apart is the issuer: a card of one of China's largest issuers starts with its
bank's BIN and has that BIN's length (`card_bins`: `622202` and 19 digits for an ICBC debit card,
`622588` and 16 for CMB's). With its Luhn digit too, a random id passes two to four times in a
million (two to four in ten thousand of those that already start `62`). So after a bare label
that names no system (`ID:`, `uid`, `ref`, `编号`, `用户ID`; `bare_label`) such a number is
reported ungrouped, and 8-8 halves with such a BIN are a card with no word beside them.
"""

from __future__ import annotations

import re

from auditor.policies.detectors.card_bins import issued_card
from auditor.policies.detectors.interface import (
    DASHES,
    ELEVEN_DIGITS,
    GROUP_GAP,
    Candidate,
    Detector,
    digits_only,
)
from auditor.policies.detectors.resident_id import has_old_resident_id_shape, has_resident_id_shape

_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")  # 2d with its digits summed, as a digit

# (prefix, lengths): a number is a card number's shape when some prefix starts it and its length
# is one of that prefix's.
_SCHEMES: tuple[tuple[tuple[str, ...], frozenset[int]], ...] = (
    (("4",), frozenset((13, 16, 19))),
    ((*map(str, range(2221, 2721)), "51", "52", "53", "54", "55"), frozenset((16,))),
    (("50", "56", "57", "58", "59"), frozenset(range(16, 20))),
    (("34", "37"), frozenset((15,))),
    (("300", "301", "302", "303", "304", "305", "3095", "36"), frozenset(range(14, 20))),
    ((*map(str, range(3528, 3590)), "38", "39"), frozenset(range(16, 20))),
    (("6", "81"), frozenset(range(16, 20))),
    (("9",), frozenset((16, 19))),
)
_LENGTHS_BY_PREFIX = {prefix: lengths for prefixes, lengths in _SCHEMES for prefix in prefixes}

# Between two groups any `GROUP_GAP`, the groups of one number split alike or not; between 8-8
# or 6-13 halves the same but a dot.
_SEP = GROUP_GAP
_HALVES = rf"(?:[ {DASHES}-]|  | [{DASHES}-] )"


def has_issuer_shape(digits: str) -> bool:
    """Whether `digits` start with a card scheme's prefix and have one of its lengths."""
    size = len(digits)
    return any(
        size in lengths
        for cut in (1, 2, 3, 4)
        if (lengths := _LENGTHS_BY_PREFIX.get(digits[:cut])) is not None
    )


def luhn_ok(digits: str) -> bool:
    """The Luhn check: from the right, every second digit doubled (digits summed), total % 10.

    `digits` are ASCII digits; summed as bytes (each is `48 + d`) with no `int` per digit.
    """
    raw = digits.encode("ascii")
    total = sum(raw[-1::-2]) + sum(raw[-2::-2].translate(_DOUBLED)) - 48 * len(raw)
    return total % 10 == 0


class BankCardDetector(Detector):
    name = "bank_card"
    description = (
        "Bank card number (13-19 digits with a card scheme's prefix and length, Luhn check; "
        "plain or in groups split by spaces, dots or dashes, 8-8 halves beside a card, payment "
        "or bank word or with a large Chinese issuer's BIN and length, UnionPay's 6-13; "
        "Maestro's 12-15 next to a card word; resident-ID-shaped numbers, numbers after an id "
        "label (消息ID:, 订单号, msg_id) unless typed in groups or an issuer's card after a bare "
        "ID:, and digits inside a web address but a card parameter's value excluded)"
    )
    # Plain (12 to 19 digits), in groups of four (4-4-4-4 and up to three more digits), as
    # 4-4-4 and up to three more digits when no further group follows (a short Maestro number),
    # as American Express prints its 15 digits, 4-6-5, or as two halves of 8-8 or UnionPay's
    # 6-13 (whose separator is no dot: `62220212.34567894` is a decimal number). A number
    # that a digit and a dot or dash run into (`1.6222.0212.3456.7894`, `0.6222021234567894`,
    # `010-62220212 34567894`) is part of a longer one: a version, a decimal, an area code.
    pattern = re.compile(
        rf"[0-9](?<![0-9][0-9])(?<![0-9][.{DASHES}-][0-9])"
        rf"(?:[0-9]{{3}}{_SEP}[0-9]{{4}}{_SEP}[0-9]{{4}}"
        rf"(?:{_SEP}[0-9]{{4}}(?:{_SEP}?[0-9]{{1,3}})?(?![0-9])"
        rf"|(?:{_SEP}?[0-9]{{1,3}})?(?![0-9]|{_SEP}[0-9]))"
        rf"|[0-9]{{3}}{_SEP}[0-9]{{6}}{_SEP}[0-9]{{5}}(?![0-9]|{_SEP}[0-9])"
        rf"|(?P<halves>[0-9]{{7}}{_HALVES}[0-9]{{8}}|[0-9]{{5}}{_HALVES}[0-9]{{13}})"
        rf"(?![0-9]|{_SEP}[0-9])"
        r"|[0-9]{11,18}(?![0-9Xx]))"
    )
    digits = ELEVEN_DIGITS
    base_confidence = "low"
    context_words = (
        "银行卡",
        "卡号",
        "信用卡",
        "储蓄卡",
        "借记卡",
        "card",
        "visa",
        "unionpay",
        "银联",
        "maestro",
    )

    def canonical(self, raw: str) -> str:
        return digits_only(raw)

    def canonical_part(self, raw: str) -> str:
        return digits_only(raw)

    def is_valid(self, value: str) -> bool:
        return (
            has_issuer_shape(value)
            and luhn_ok(value)
            and not has_resident_id_shape(value)
            and not has_old_resident_id_shape(value)
        )

    def find(self, text: str) -> list[Candidate]:
        found = []
        for match in self.pattern.finditer(text):
            value = digits_only(match.group())
            start, end = match.span()
            stop = end
            if not self.is_valid(value) and not (
                has_short_maestro_shape(value)
                and luhn_ok(value)
                and _near_card_word(text, start, end)
            ):
                core = _GROUPED_CORE(text, start, end)
                if core is None or not self.is_valid(digits := digits_only(core.group())):
                    continue
                value, stop = digits, core.end()
            if match["halves"] is not None and not halves_of_a_card(text, start, end, value):
                continue
            if in_web_address(text, start):
                continue
            label = id_label(text, start)
            if (
                label is not None
                and not typed_as_card(text, start, end, value)
                and not (bare_label(text, label) and issued_card(value))
            ):
                continue
            found.append(Candidate(start, stop, value))
        return found


# Four groups of four with one to three digits after a separator: a 19-digit card, or a 16-digit
# one and what follows it (`4111 1111 1111 1111 12/28`, an expiry; `... 123`, a security code).
# When the whole fails the checks, the four groups are checked alone.
_GROUPED_CORE = re.compile(rf"(?:[0-9]{{4}}{_SEP}){{3}}[0-9]{{4}}(?={_SEP}[0-9])").match


MAESTRO_PREFIXES = ("5018", "5020", "5038", "5893", "6304", "6759", "6761", "6762", "6763")
SHORT_CARD_WORDS = ("卡号", "银行卡", "借记卡", "储蓄卡", "card", "maestro")
SHORT_CARD_REACH = 20
_SHORT_CARD_WORD = re.compile("|".join(map(re.escape, SHORT_CARD_WORDS))).search


def has_short_maestro_shape(value: str) -> bool:
    """12 to 15 digits starting with a Maestro prefix (longer ones are `has_issuer_shape`'s)."""
    return 12 <= len(value) <= 15 and value.startswith(MAESTRO_PREFIXES)


def _near_card_word(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - SHORT_CARD_REACH) : start]
    after = text[end : end + SHORT_CARD_REACH]
    return _SHORT_CARD_WORD((before + "\n" + after).casefold()) is not None


# Two numbers side by side are as often two phone, QQ or order numbers: 8-8 halves are a card
# beside a card word; beside a payment word or a bank's name, or with an issuer's BIN and length
# (`issued_card`), unless a phone, QQ or order word says what the two numbers are or another
# number comes right before them (`010 62220212 34567894`, an area code). 6-13 halves are a
# UnionPay 62 card of 19 digits. Halves touching a letter (`SO625418-7522094963886`, an order)
# are none.
HALVES_CARD_WORDS = (*SHORT_CARD_WORDS, "信用卡", "银联", "visa", "unionpay")
PAYMENT_WORDS = (
    *("转账", "打款", "汇款", "收款", "转到", "汇到", "transfer to"),
    *("工行", "建行", "农行", "中行", "招行", "交行", "邮储", "工商银行", "建设银行", "农业银行"),
    *("中国银行", "招商银行", "交通银行", "icbc"),
)
NOT_CARD_WORDS = (
    *("电话", "座机", "固话", "分机", "总机", "传真", "热线", "致电", "来电"),
    *("tel", "phone", "fax", "call"),
    *("qq", "群号", "加群", "订单", "单号", "order"),
)
_HALVES_CARD_WORD = re.compile("|".join(map(re.escape, HALVES_CARD_WORDS))).search
_PAYMENT_WORD = re.compile("|".join(map(re.escape, PAYMENT_WORDS))).search
_NOT_CARD_WORD = re.compile(
    "|".join(f"(?<![a-z]){word}" if word.isascii() else word for word in NOT_CARD_WORDS)
).search
_LETTER = re.compile("[A-Za-z]").match
_NUMBER_BEFORE = re.compile(rf"[0-9]{_SEP}\Z").search


def halves_of_a_card(text: str, start: int, end: int, value: str) -> bool:
    """Whether `value`, typed in two halves at `text[start:end]`, reads as a card."""
    if (start and _LETTER(text, start - 1)) or _LETTER(text, end):
        return False
    if len(value) == 19:
        return value.startswith("62")
    before = text[max(0, start - SHORT_CARD_REACH) : start]
    after = text[end : end + SHORT_CARD_REACH]
    near = (before + "\n" + after).casefold()
    if _HALVES_CARD_WORD(near) is not None:
        return True
    if _NOT_CARD_WORD(near) is not None or _NUMBER_BEFORE(text, max(0, start - 4), start):
        return False
    return _PAYMENT_WORD(near) is not None or issued_card(value)


# What may precede the digits inside one web address: printable ASCII but a space, a quote, an
# angle bracket and a comma (a Chinese comma, which the detectors' view makes `,`, often ends an
# address typed in a sentence). A run longer than `URL_REACH` is not looked into: its digits are
# reported, as if outside an address.
URL_REACH = 2_048
_RUN_BEFORE = re.compile(r"[!#-&(-+\--;=?-~]*").match  # read on the reversed text
_ADDRESS = re.compile(r"://|[Ww][Ww][Ww]\.|[A-Za-z0-9-]\.[A-Za-z]{2,}(?::[0-9]+)?/").search
_CARD_PARAMETER = re.compile(
    r"[?&;](?:[A-Za-z]*_?card(?:_?(?:no|num|number|id))?|pan)=\Z", re.IGNORECASE
).search


def in_web_address(text: str, start: int) -> bool:
    """Whether the digits at `start` are part of a web address, but a card parameter's value."""
    window = text[max(0, start - URL_REACH) : start]
    run = _RUN_BEFORE(window[::-1]).group()[::-1]
    return _ADDRESS(run) is not None and _CARD_PARAMETER(run) is None


# Labels of identifiers that are no card number, as the detectors' view spells them (fullwidth
# forms and `：` are ASCII there); `单号` covers 订单号, 运单号, 快递单号, 支付单号 and the like. A
# Latin label starts a word (`paid 4111...` names no id).
ID_LABELS = (
    "消息id",
    "消息编号",
    "单号",
    "流水号",
    "交易号",
    "编号",
    "msg[ _-]?id",
    "message[ _-]?id",
    "(?:order|txn|transaction|trade|request|trace|user|u)?[ _-]?id",
    "(?:order|invoice|tracking)[ _-]?(?:no|number)",
    "ref",
)
ID_LABEL_REACH = 24
_ID_LABEL = re.compile(
    "(?P<label>"
    + "|".join(f"(?<![a-z]){label}" if label[0].isascii() else label for label in ID_LABELS)
    + r")[\s:#=.-]*\Z",
    re.IGNORECASE,
).search
_CARD_WORD_REACH = 12  # `credit card number`
_CARD_WORD = re.compile("|".join(map(re.escape, BankCardDetector.context_words))).search


def id_label(text: str, start: int) -> re.Match[str] | None:
    """The identifier's label the digits at `start` follow, if no card word precedes it."""
    label = _ID_LABEL(text, max(0, start - ID_LABEL_REACH), start)
    if label is None:
        return None
    before = text[max(0, label.start() - _CARD_WORD_REACH) : label.start()]
    return label if _CARD_WORD(before.casefold()) is None else None


# The labels that say only that an id follows, not whose (`ID:`, `uid`, `ref`, `编号`, `用户ID`):
# a card an issuer's BIN, length and Luhn name (`issued_card`) is reported after them. A label
# that names its system (`消息ID`, `订单编号`, `order id`, `msg_id`) still hides any number, and
# so does a bare one right after an ideograph that may make it a system's (`设备ID`, `合同编号`)
# rather than a particle, a pronoun or a verb (`我的ID`, `你看下ref`).
_BARE_LABEL = re.compile(r"(?:u|user[ _-]?)?id|ref|编号", re.IGNORECASE).fullmatch
_IDEOGRAPH = re.compile("[\u3400-\u9fff]").match
_BEFORE_BARE = frozenset("的是个下看查这那我你他她给把为在")


def bare_label(text: str, label: re.Match[str]) -> bool:
    """Whether the `id_label` match `label` is a bare one."""
    if _BARE_LABEL(label["label"]) is None:
        return False
    at = label.start()
    if not at or _IDEOGRAPH(text, at - 1) is None or text[at - 1] in _BEFORE_BARE:
        return True
    return text[max(0, at - 2) : at] == "用户"


# The schemes whose cards people type in groups of four, with their lengths: a number after an id
# label is a card only in one of them (Diners, Discover and the 9s of national schemes look too
# much like a serial number's digits).
TYPED_SCHEMES: tuple[tuple[tuple[str, ...], frozenset[int]], ...] = (
    (("62",), frozenset(range(16, 20))),
    (("4",), frozenset((13, 16, 19))),
    ((*map(str, range(2221, 2721)), "51", "52", "53", "54", "55"), frozenset((16,))),
    (("34", "37"), frozenset((15,))),
    (tuple(map(str, range(3528, 3590))), frozenset(range(16, 20))),
)
_TYPED_LENGTHS = {prefix: lengths for prefixes, lengths in TYPED_SCHEMES for prefix in prefixes}
_FURTHER_GROUP = re.compile(rf"{_SEP}[0-9]").match


def typed_as_card(text: str, start: int, end: int, value: str) -> bool:
    """Whether the Luhn-checked `value`, read from the match `text[start:end]`, was typed as a
    card: in the detector's groups (no further group follows, as in a 22-digit tracking number)
    with a `TYPED_SCHEMES` prefix and length."""
    if len(value) == end - start or _FURTHER_GROUP(text, end) is not None:
        return False
    return any(
        len(value) in lengths
        for cut in (1, 2, 4)
        if (lengths := _TYPED_LENGTHS.get(value[:cut])) is not None
    )
