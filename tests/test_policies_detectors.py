"""Sensitive-data detectors: valid and invalid checks, exact spans, context and allowlists."""

import random
import re
from urllib.parse import urlsplit

import pytest

from auditor.policies.detectors import DETECTORS
from auditor.policies.detectors.bank_card import luhn_ok
from auditor.policies.detectors.resident_id import check_digit
from auditor.policies.model import DetectorRule
from auditor.policies.pii import PiiScanner, view_of


def scanner(name, words=None, within=20, allow=()):
    detector = DETECTORS[name]
    rule = DetectorRule(
        id=name,
        detector=name,
        severity="high",
        context_words=detector.context_words if words is None else tuple(words),
        context_within=within,
        allow=tuple(allow),
        line=1,
    )
    return PiiScanner([rule])


def found(name, text, **options):
    return [
        (hit.start, hit.end, hit.matched, hit.value, hit.confidence, hit.normalizations)
        for hit in scanner(name, **options).scan(text)
    ]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("mobile", "我的手机号是13812345678", [(6, 17, "13812345678", "13812345678", "high", ())]),
        ("mobile", "订单 13812345678 已发", [(3, 14, "13812345678", "13812345678", "low", ())]),
        (
            "mobile",
            "call +86 138-1234-5678",
            [(5, 22, "+86 138-1234-5678", "13812345678", "high", ())],
        ),
        (
            "mobile",
            "电话１３８１２３４５６７８",
            [(2, 13, "１３８１２３４５６７８", "13812345678", "high", ("nfkc",))],
        ),
        ("mobile", "电话12812345678", []),
        ("mobile", "单号2138123456789", []),
        (
            "resident_id",
            "身份证号码 110108199003071238。",
            [(6, 24, "110108199003071238", "110108199003071238", "high", ())],
        ),
        (
            "resident_id",
            "id 44030519851224003x",
            [(3, 21, "44030519851224003x", "44030519851224003X", "high", ())],
        ),
        ("resident_id", "身份证号码 110108199003071239", []),
        ("resident_id", "身份证号码 110108199013071238", []),
        (
            "bank_card",
            "card no. 6228481742180966 please",
            [(9, 25, "6228481742180966", "6228481742180966", "high", ())],
        ),
        (
            "bank_card",
            "转账到 6228 4817 4218 0966",
            [(4, 23, "6228 4817 4218 0966", "6228481742180966", "low", ())],
        ),
        ("bank_card", "card no. 6228489290810033901 please", []),
        ("bank_card", "card 110108199003071006", []),
        (
            "email",
            "mail Zhang.San@Example.COM.",
            [(5, 26, "Zhang.San@Example.COM", "zhang.san@example.com", "high", ())],
        ),
        (
            "email",
            "联系 wang@公司.cn 或 a..b@example.com",
            [(3, 13, "wang@公司.cn", "wang@公司.cn", "high", ())],
        ),
        (
            "ipv4",
            "server is 10.0.12.254.",
            [(10, 21, "10.0.12.254", "10.0.12.254", "high", ())],
        ),
        ("ipv4", "version 1.2.3.4.5 and 10.0.0.256 and 01.2.3.4", []),
        (
            "url",
            "see https://files.example.com/d/3015。谢谢",
            [
                (
                    4,
                    36,
                    "https://files.example.com/d/3015",
                    "https://files.example.com/d/3015",
                    "high",
                    (),
                )
            ],
        ),
        (
            "url",
            "(www.example.com/a).",
            [(1, 18, "www.example.com/a", "www.example.com/a", "high", ())],
        ),
        ("url", "http://localhost:8080/x", []),
    ],
)
def test_each_detector_checks_what_its_pattern_finds(name, text, expected):
    assert found(name, text) == expected


def test_the_resident_id_detector_rejects_every_wrong_check_digit():
    valid = "110108199003071238"
    wrong = [valid[:17] + digit for digit in "0123456789X" if digit != valid[17]]
    assert found("resident_id", f"身份证 {valid}")
    assert all(found("resident_id", f"身份证 {each}") == [] for each in wrong)


def test_the_bank_card_detector_rejects_every_wrong_luhn_digit():
    valid = "6228481742180966"
    wrong = [valid[:15] + digit for digit in "0123456789" if digit != valid[15]]
    assert found("bank_card", f"card {valid}")
    assert all(found("bank_card", f"card {each}") == [] for each in wrong)


def test_context_words_raise_confidence_only_within_reach():
    text = "卡号" + "。" * 25 + "6228481742180966"
    assert found("bank_card", text)[0][4] == "low"
    assert found("bank_card", text, within=30)[0][4] == "high"
    assert found("mobile", "phone: 13812345678", words=[])[0][4] == "low"


def test_an_allowlisted_value_is_not_reported():
    text = "热线 13800138000，手机 13912345678"
    assert [hit[3] for hit in found("mobile", text, allow=["13800138000"])] == ["13912345678"]
    assert found("email", "write to help@corp.example", allow=["*@corp.example"]) == []


def test_text_without_a_needle_runs_no_detector():
    every = PiiScanner(
        [
            DetectorRule(name, name, "low", (), 20, (), 1)
            for name in ("mobile", "resident_id", "bank_card", "email", "ipv4", "url")
        ]
    )
    assert every.scan("今天下午三点开会，订单 12345678 已确认") == []


# Each detector's pattern starts with the class of its first character so the regex engine can
# skip to candidate positions; these are the same expressions written lookbehind-first, the
# plain way, and must find exactly the same matches.
_GAP = r"(?:[ .\u2010-\u2015\u2212-]|  | [\u2010-\u2015\u2212-] )"
_HALF = r"(?:[ \u2010-\u2015\u2212-]|  | [\u2010-\u2015\u2212-] )"
_LEAD = r"(?<![0-9])(?<![0-9][.\u2010-\u2015\u2212-])"  # a digit, or one and a dot or dash
PLAIN_PATTERNS = {
    "resident_id": r"(?<![0-9])[1-8][0-9]{5}"
    r"(?:(?:[0-9]{8}|(?P<s>[ -])[0-9]{8}(?P=s))[0-9]{3}[0-9Xx]|[0-9]{9})(?![0-9Xx])",
    "bank_card": rf"{_LEAD}(?:[0-9]{{4}}{_GAP}){{3}}[0-9]{{4}}(?:{_GAP}?[0-9]{{1,3}})?(?![0-9])"
    rf"|{_LEAD}(?:[0-9]{{4}}{_GAP}){{2}}[0-9]{{4}}(?:{_GAP}?[0-9]{{1,3}})?(?![0-9]|{_GAP}[0-9])"
    rf"|{_LEAD}[0-9]{{4}}{_GAP}[0-9]{{6}}{_GAP}[0-9]{{5}}(?![0-9]|{_GAP}[0-9])"
    rf"|{_LEAD}(?:[0-9]{{8}}{_HALF}[0-9]{{8}}|[0-9]{{6}}{_HALF}[0-9]{{13}})(?![0-9]|{_GAP}[0-9])"
    rf"|{_LEAD}[0-9]{{12,19}}(?![0-9Xx])",
    "mobile": r"(?<![0-9])(?<![0-9]\.)(?:\+?86[ -]?)?1[3-9][0-9]"
    r"(?:[ -]?[0-9]{4}[ -]?|(?P<s>[.\u2010-\u2015\u2212])[0-9]{4}(?P=s)"
    r"|[0-9](?P<g>[ .\u2010-\u2015\u2212-])[0-9]{3}(?P=g))[0-9]{4}(?![0-9]|\.[0-9])",
    "ipv4": r"(?<![0-9.Vv])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9]|\.[0-9])",
    "url": r"(?<![A-Za-z0-9])(?:[Hh][Tt][Tt][Pp][Ss]?://|[Ww]{3}\.)"
    r"[^\s<>\"'，。、；！？）】」]*[^\s<>\"'，。、；！？）】」.,;:!?)\]}]",
}


def _fuzz_texts(alphabet: str, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pieces = [*alphabet, "86", "+86 ", "138", "1381234", "4111 ", "http://", "www.", "WwW."]
    pieces += ["192.168.", "1.2.", "255.", "4403051965", "03282044", "12345678", "0000"]
    pieces += ["139.", "1391 ", "–1234–", "440305 ", "19651224 ", "v", "822463 ", "10005"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 40))) for _ in range(count)]


@pytest.mark.parametrize("name", sorted(PLAIN_PATTERNS))
def test_first_character_patterns_match_exactly_what_the_plain_ones_do(name):
    plain = re.compile(PLAIN_PATTERNS[name])
    fast = DETECTORS[name].pattern
    texts = _fuzz_texts("0123456789 -+.Xxa:/wHtTpsW，号–", 6_000, seed=len(name))
    for text in texts:
        expected = [(m.span(), m.group()) for m in plain.finditer(text)]
        assert [(m.span(), m.group()) for m in fast.finditer(text)] == expected, text
    assert sum(1 for text in texts if plain.search(text)) > 50  # the fuzz does reach matches


def test_digits_in_another_style_are_read_even_beyond_the_basic_plane():
    text = "电话 𝟏𝟑𝟖𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖，谢谢"  # mathematical bold digits
    assert found("mobile", text) == [(3, 14, "𝟏𝟑𝟖𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖", "13812345678", "high", ("nfkc",))]


@pytest.mark.parametrize(
    ("name", "text", "matched"),
    [
        ("mobile", "手机 139.1234.5678。", "139.1234.5678"),
        ("mobile", "手机 139–1234–5678", "139–1234–5678"),
        ("mobile", "手机 139—1234—5678", "139—1234—5678"),
        ("mobile", "手机 1391 234 5678", "1391 234 5678"),
        ("mobile", "手机 1391-234-5678", "1391-234-5678"),
        ("mobile", "手机 +86 139.1234.5678", "+86 139.1234.5678"),
        ("resident_id", "身份证 110108 19900307 1238", "110108 19900307 1238"),
        ("resident_id", "身份证 110108-19900307-1238", "110108-19900307-1238"),
    ],
)
def test_numbers_written_in_other_groupings_are_found(name, text, matched):
    value = "13912345678" if name == "mobile" else "110108199003071238"
    start = text.index(matched)
    assert found(name, text) == [(start, start + len(matched), matched, value, "high", ())]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("mobile", "手机 139.12345678"),  # a decimal number
        ("mobile", "手机 0.13912345678"),
        ("mobile", "手机 13912345678.5"),
        ("mobile", "手机 139.1234-5678"),  # two different separators
        ("mobile", "手机 1391 2345 678"),
        ("mobile", "host 192.168.0255.4111"),
        ("resident_id", "身份证 110108 19900307-1238"),
        ("resident_id", "身份证 1101081 9900307 1238"),
        ("resident_id", "身份证 110105209912310010"),  # born 2099-12-31, check digit right
    ],
)
def test_look_alikes_of_grouped_numbers_are_not_found(name, text):
    assert found(name, text) == []


def test_a_version_string_after_v_is_no_ipv4_address():
    assert found("ipv4", "upgrade to v2.3.10.1 or V10.0.0.1") == []


@pytest.mark.parametrize(
    "text",
    [
        "version 2.3.10.1",
        "Version: 6.5.3.143",
        "版本号 6.5.3.143",
        "版本为6.5.3.143",
        "固件6.5.3.143",
        "build 10.0.190.41",
        "firmware=1.2.3.4",
    ],
)
def test_a_dotted_quad_after_a_version_word_is_no_ipv4_address(text):
    assert found("ipv4", text) == []


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("server 10.0.0.1", "10.0.0.1"),  # `server` ends with `ver`
        ("driver at 10.1.2.3", "10.1.2.3"),
        ("服务器地址：192.168.1.1", "192.168.1.1"),
        ("version 2 runs on 10.0.0.7", "10.0.0.7"),
    ],
)
def test_an_address_after_other_words_is_still_found(text, address):
    assert [hit[2] for hit in found("ipv4", text)] == [address]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("请发到 用户@例子.公司 谢谢", "用户@例子.公司"),
        ("write to x@bücher.de today", "x@bücher.de"),
        ("Jürgen.M@Bücher.de", "jürgen.m@bücher.de"),
        ("zhangsan@xn--fsqu00a.xn--fiqs8s", "zhangsan@xn--fsqu00a.xn--fiqs8s"),
        ("我的邮箱123456@qq.com", "123456@qq.com"),  # the address after the word, not with it
        ("发到 wang@公司.cn谢谢", "wang@公司.cn"),
        ("邮箱 张三@例子.中国，发我一下", "张三@例子.中国"),
        ("邮箱张三@例子.中国，发我一下", "张三@例子.中国"),  # the label word is no name
        ("电子邮箱用户@163.com", "用户@163.com"),
    ],
)
def test_internationalised_email_addresses_are_found(text, value):
    assert [hit[3] for hit in found("email", text)] == [value]


@pytest.mark.parametrize(
    "text",
    [
        "证件号码: 320102351007480",
        "身份证 110101800101123 已核对",
        "110101800101123 是他的身份证",
        "ID card no. 440305651231001",
    ],
)
def test_an_old_15_digit_resident_id_next_to_an_identity_word_is_found(text):
    hits = found("resident_id", text)
    assert [(len(hit[3]), hit[4]) for hit in hits] == [(15, "high")]


@pytest.mark.parametrize(
    "text",
    [
        "320102351007480",  # no identity word
        "快递单号 JD320102351007480",
        "身份证 320102351307480",  # month 13
        "身份证 320102350230480",  # 30 February
        "身份证 990102351007480",  # no province 99
        "身份证 320002351007480",  # city 00
        "身份证 3201023510074801",  # 16 digits
    ],
)
def test_other_15_digit_numbers_are_no_resident_id(text):
    assert found("resident_id", text) == []


@pytest.mark.parametrize(
    "text",
    [
        "createTime: 1727969845525",  # epoch milliseconds
        "时间戳20260319022907",  # 14 digits, no scheme has that length for 20
        "消息ID:1958439488294308479",  # a 64-bit message id
        "打这个+8619742894206找王经理",  # 86 and a mobile number
        "快递单号 JD7369260258183",  # a 7: petroleum, no bank
        "ref 0000000000000000",
    ],
)
def test_long_numbers_without_a_card_schemes_prefix_are_no_bank_card(text):
    assert found("bank_card", text) == []


@pytest.mark.parametrize(
    "number",
    [
        "6222021234567894",  # UnionPay 62, 16 digits
        "6228480402564890018",  # UnionPay 62, 19 digits
        "4111111111111111",  # Visa
        "5500000000000004",  # Mastercard 55
        "2221000000000009",  # Mastercard 2-series
        "378282246310005",  # American Express, 15 digits
        "3530111333300000",  # JCB
        "30569309025904",  # Diners, 14 digits
        "6011111111111117",  # Discover
    ],
)
def test_card_numbers_of_every_scheme_are_found(number):
    assert [hit[3] for hit in found("bank_card", f"卡号 {number}")] == [number]


@pytest.mark.parametrize(
    ("name", "allow", "text"),
    [
        ("mobile", "138-0013-8000", "热线 13800138000"),
        ("mobile", "+86 138 0013 8000", "热线 138-0013-8000"),
        ("mobile", "１３８００１３８０００", "热线 13800138000"),
        ("mobile", "138-0013-*", "热线 138 0013 8000"),
        ("bank_card", "6222 0212 3456 7894", "卡号 6222021234567894"),
        ("bank_card", "6222-0212-3456-7894", "卡号 6222 0212 3456 7894"),
        ("resident_id", "110108-19900307-1238", "身份证 110108199003071238"),
        ("email", "Help@Corp.Example", "write to help@corp.example"),
    ],
)
def test_a_formatted_allowlist_value_allows_the_number_however_it_is_written(name, allow, text):
    assert found(name, text, allow=[allow]) == []
    assert found(name, text) != []


def test_the_check_digit_is_the_gb_11643_weighted_sum():
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    rng = random.Random(11643)
    for _ in range(2_000):
        first17 = "".join(rng.choice("0123456789") for _ in range(17))
        total = sum(int(digit) * weight for digit, weight in zip(first17, weights, strict=True))
        assert check_digit(first17) == "10X98765432"[total % 11], first17


def test_the_luhn_check_doubles_every_second_digit_from_the_right():
    rng = random.Random(1954)
    for _ in range(2_000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 19)))
        total = 0
        for place, digit in enumerate(reversed(digits)):
            value = int(digit) * (2 if place % 2 else 1)
            total += value - 9 if value > 9 else value
        assert luhn_ok(digits) == (total % 10 == 0), digits


def test_an_ipv4_octet_is_0_to_255_without_a_leading_zero():
    detector = DETECTORS["ipv4"]()
    octets = [str(n) for n in range(1000)] + [f"0{n}" for n in range(100)] + ["00", "000"]
    for octet in octets:
        expected = int(octet) <= 255 and (octet == "0" or not octet.startswith("0"))
        assert detector.is_valid(f"10.{octet}.1.1") == expected, octet
        assert detector.is_valid(f"{octet}.1.1.1") == expected, octet


def test_the_url_check_takes_the_host_urlsplit_takes():
    """Plain ASCII hosts are read without `urlsplit`; every URL must get its verdict."""
    detector = DETECTORS["url"]()
    pieces = [
        "a",
        "Z",
        "0",
        ".",
        "-",
        ":",
        "80",
        "/",
        "?",
        "#",
        "@",
        "[",
        "]",
        "例",
        "％",
        "..",
        "℀",
    ]
    rng = random.Random(3986)
    checked = 0
    for _ in range(20_000):
        start = rng.choice(["http://", "https://", "HTTPS://", "www.", "WwW."])
        url = start + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        if detector.pattern.fullmatch(url) is None:
            continue
        full = "http://" + url if url[:4].lower() == "www." else url
        try:
            parts = urlsplit(full)
            host = parts.hostname or ""
            expected = parts.scheme.lower() in ("http", "https") and "." in host.strip(".")
        except ValueError:
            expected = False
        assert detector.is_valid(url) == expected, url
        checked += 1
    assert checked > 5_000


EVERY_DETECTOR = [
    DetectorRule(name, name, "low", (), 20, (), 1)
    for name in ("mobile", "resident_id", "bank_card", "email", "ipv4", "url")
]


@pytest.mark.parametrize(
    ("text", "detector", "matched"),
    [
        ("手机 138－1234－5678", "mobile", "138－1234－5678"),  # fullwidth hyphens
        ("手机 ①③⑧12345678", "mobile", "①③⑧12345678"),  # circled digits
        ("手机 138\u00a01234\u00a05678", "mobile", "138\u00a01234\u00a05678"),  # no-break spaces
        ("mail bob﹫example.com", "email", "bob﹫example.com"),  # small commercial at
        ("see ｈｔｔｐ：／／example.com/x ok", "url", "ｈｔｔｐ：／／example.com/x"),
        ("服务器 10．0．0．1", "ipv4", "10．0．0．1"),
    ],
)
def test_the_prefilter_reads_the_view_the_detectors_read(text, detector, matched):
    """Evasions the view undoes pass the prefilter on their own, not only when something else
    in the text (a dotted quad) happens to let the numeric detectors run."""
    every = PiiScanner(EVERY_DETECTOR)

    alone = [(hit.rule.detector, hit.matched) for hit in every.scan(text)]
    beside = [(hit.rule.detector, hit.matched) for hit in every.scan(text + " host 10.0.0.2")]

    assert alone == [(detector, matched)]
    assert beside == [*alone, ("ipv4", "10.0.0.2")]


def test_the_prefilter_reads_the_view_even_when_the_caller_saw_no_needle():
    every = PiiScanner(EVERY_DETECTOR)

    assert [hit.matched for hit in every.scan("bob﹫example.com", needles=False)] == [
        "bob﹫example.com"
    ]


def test_a_text_and_its_view_give_the_same_detections():
    """Fuzz: whatever evasive spelling the view undoes (fullwidth, circled or bold digits,
    no-break and ideographic spaces, fullwidth punctuation), the raw text is found exactly as
    its view is, at the same offsets."""
    every = PiiScanner(EVERY_DETECTOR)
    rng = random.Random(7)
    pieces = [*"0123456789 -.@:/wW", "１", "３", "８", "①", "③", "⑧", "\u00a0", "\u3000"]
    pieces += ["－", "．", "＠", "：", "／", "ｗ", "𝟏", "https://", "ｈｔｔｐ：／／", "ｗｗｗ．"]
    pieces += ["138", "1381234", "5678", "4403051965", "03282044", "6228480659554049"]
    pieces += ["10.0.", "bob", "example", ".com", "手机", "，"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 25))) for _ in range(5_000)]

    def detections(text):
        return [(h.rule.detector, h.start, h.end, h.value) for h in every.scan(text)]

    differing = [text for text in texts if detections(text) != detections(view_of(text))]

    assert differing == []
    assert sum(1 for text in texts if detections(text)) > 500  # the fuzz does reach detections


@pytest.mark.parametrize(
    "text",
    [
        "看看这个 https://example.cn/order/6290404992929455?t=1722731748079",
        "https://mp.weixin.qq.com/s?__biz=MzA1&mid=6222021234567894&idx=1",
        "link: www.taobao.com/item/6222021234567894",
        "jd.com/6222021234567894.html",
        "https://pay.example.cn/track#6222021234567894",
        "ＨＴＴＰＳ：／／ｘ．ｃｎ／６２２２０２１２３４５６７８９４",
        "https://a.cn/?japan=6222021234567894",
    ],
)
def test_digits_inside_a_web_address_are_no_bank_card(text):
    assert found("bank_card", text) == []


@pytest.mark.parametrize(
    "text",
    [
        "https://pay.example.cn/bind?card=6222021234567894",
        "https://m.bank.cn/p?uid=7&cardNo=6222021234567894",
        "http://x.cn/a?bank_card=6222021234567894&t=1",
        "https://x.cn/pay 6222021234567894 这张卡",
        "链接https://x.cn/a，6222021234567894",
        "看这个 https://x.cn/a 卡号6222021234567894",
    ],
)
def test_a_card_parameters_value_or_a_card_beside_a_web_address_is_found(text):
    assert [hit[3] for hit in found("bank_card", text)] == ["6222021234567894"]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("maestro 675964982648", "675964982648"),
        ("Maestro card 5018 9876 5430", "501898765430"),
        ("卡号630412345678903，谢谢", "630412345678903"),
        ("58931234567896 是我的借记卡", "58931234567896"),
        ("debit card 6304-1234-5678-903", "630412345678903"),
    ],
)
def test_a_short_maestro_number_next_to_a_card_word_is_found(text, number):
    assert [hit[3] for hit in found("bank_card", text)] == [number]


@pytest.mark.parametrize(
    "text",
    [
        "order 675964982648",
        "QQ 501898765430",
        "ref 6304 1234 5678 903",
        "卡号 675964982647",  # Luhn fails
        "卡号 6228 4817 4218 09661234",  # a fourth group glued to more digits: no 12-digit card
    ],
)
def test_a_short_maestro_number_without_a_card_word_or_check_is_not_found(text):
    assert found("bank_card", text) == []


@pytest.mark.parametrize(
    "text",
    [
        "消息ID:395843948829430847",  # passes the prefix, length and Luhn checks
        "msg_id 4375748387439550",
        "Message-ID: 36309437449863667",
        "订单号：６２３４９８１４２６５６１９４８８７７",
        "快递单号 628448733109647978",
        "交易流水号:395927963274535528 请查一下",
        "合同编号=3553144099074776",
        "order id #396027188439845920",
        "Order No.: 3534940583808734",
        "ref 4400050182510795",
        "uid6250004527366438870",
    ],
)
def test_a_number_after_an_identifiers_label_is_no_bank_card(text):
    assert found("bank_card", text) == []


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("订单号 2026112700123 卡号6222021234567894", "6222021234567894"),
        ("卡号:6222021234567894，流水号:20261127", "6222021234567894"),
        ("流水号:20261127，退款到银行卡 6222021234567894", "6222021234567894"),
        ("card id 4111111111111111", "4111111111111111"),
        ("credit card number 交易号: 4111111111111111", "4111111111111111"),
        ("paid 4111111111111111", "4111111111111111"),
        ("preference 4111111111111111", "4111111111111111"),
    ],
)
def test_a_card_beside_a_card_word_or_a_word_ending_like_a_label_is_found(text, number):
    assert [hit[3] for hit in found("bank_card", text)] == [number]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("ID: 6222 0212 3456 7890 128", "6222021234567890128"),
        ("ref 6222-0212-3456-7894", "6222021234567894"),
        ("id 4111 1111 1111 1111", "4111111111111111"),
        ("编号 5555 5555 5555 4444 请查一下", "5555555555554444"),
        ("uid=2221-0000-0000-0009", "2221000000000009"),
        ("Ref. 3782 8224 6310 005", "378282246310005"),
        ("用户ID#3530 1113 3330 0000", "3530111333300000"),
        ("ＩＤ：６２２２　０２１２　３４５６　７８９４", "6222021234567894"),
        ("编号：６２２２－０２１２－３４５６－７８９４", "6222021234567894"),
        ("订单号 6222 0212 3456 7894", "6222021234567894"),
        ("消息ID: 4111-1111-1111-1111", "4111111111111111"),
        ("ID: 3782 822463 10005", "378282246310005"),  # as American Express groups its digits
    ],
)
def test_a_card_typed_in_groups_of_four_after_an_id_label_is_found(text, number):
    assert [hit[3] for hit in found("bank_card", text)] == [number]


@pytest.mark.parametrize(
    "text",
    [
        "ID: 6222021234567894",  # an id is printed as one run of digits
        "ref 3622 7206 2716 67",  # Diners: no scheme a label's grouped number is read as
        "编号 6011 1111 1111 1117",  # Discover
        "tracking no 9400 1000 0000 0000 0000 00",  # a 22-digit tracking number's first groups
        "订单号 4111 1111 1111 1111 2026",  # a further group: no card's length
        "ID 4111 1111 1111 1112",  # the Luhn digit is wrong
    ],
)
def test_a_grouped_number_no_card_is_typed_as_stays_quiet_after_an_id_label(text):
    assert found("bank_card", text) == []


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("卡号 3782 822463 10005", "378282246310005"),
        ("amex 3714-496353-98431 exp 12/28", "371449635398431"),
        ("转 3782 822463 10005 谢谢", "378282246310005"),
    ],
)
def test_an_american_express_number_in_its_own_groups_is_found(text, number):
    assert [hit[3] for hit in found("bank_card", text)] == [number]


@pytest.mark.parametrize(
    "text",
    [
        "卡号 3782 822463 10006",  # the Luhn digit is wrong
        "编号 1234 567890 12345",  # no scheme's prefix
        "卡号 3782 822463 10005 1",  # a further group: no card's length
    ],
)
def test_look_alikes_of_american_express_groups_are_not_found(text):
    assert found("bank_card", text) == []


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("卡号 4111 1111 1111 1111 12/28", "4111 1111 1111 1111"),  # the expiry after it
        ("card 5555-5555-5555-4444 123", "5555-5555-5555-4444"),  # the security code
        ("ID: 6222 0212 3456 7894 123", "6222 0212 3456 7894"),
        ("卡号 6222 0212 3456 7890 128", "6222 0212 3456 7890 128"),  # 19 digits, as typed
    ],
)
def test_a_grouped_card_followed_by_a_short_number_is_found(text, matched):
    assert [hit[2] for hit in found("bank_card", text)] == [matched]
