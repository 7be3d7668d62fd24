"""Bank cards in the layouts people type (dots, dashes, fullwidth forms, two spaces, 8-8 and
UnionPay's 6-13 halves, 4-4-4-4-3 split at will) are found; dates, versions, addresses, prices,
amounts, phone, QQ and order numbers typed alike are not."""

import pytest
from test_policies_card_corpus import cards as values

CARD = "6222021234567894"
UNIONPAY_19 = "6222021234567894005"


@pytest.mark.parametrize(
    "text",
    [
        "打款到 6222.0212.3456.7894 谢谢",
        "card 6222–0212–3456–7894 thx",
        "卡号 6222—0212—3456—7894",
        "卡号 6222－0212－3456－7894",
        "卡号 6222\u30000212\u30003456\u30007894",
        "pls send to 6222  0212  3456  7894",
        "transfer to 6222 - 0212 - 3456 - 7894 asap",
        "收款 6222−0212−3456−7894",
        "card 6222.0212 3456–7894",
        "我的银行卡是62220212 34567894，请转账",
        "card no 62220212-34567894",
        "６２２２．０２１２．３４５６．７８９４",
        "ID: 6222.0212.3456.7894",
    ],
)
def test_a_card_in_a_typed_layout_is_found(text):
    assert values(text) == [CARD]


@pytest.mark.parametrize(
    "text",
    [
        "工行 622202 1234567894005 张三",
        "622202-1234567894005",
        "收款账号：6222.0212.3456.7894.005",
        "6222-0212  3456\u30007894 005",
        "6222–0212.3456 7894–005",
    ],
)
def test_a_unionpay_card_of_19_digits_in_a_typed_layout_is_found(text):
    assert values(text) == [UNIONPAY_19]


@pytest.mark.parametrize(
    "text",
    [
        "会议定在 2024.01.02",
        "2024.01.02 - 2024.01.05 休假",
        "入住 20241102 离店 20241104",
        "version 6.2.2202.1234 released",
        "服务器 10.62.220.212 端口 3456",
        "合计 ¥6222.02",
        "转账 6,222,021,234 元",
        "revenue 6 222 021 234 567 USD",
        "共计 6.222.021.234.567.894",
        "读数 6222.02 1234.56 7894.00 4111.11",
        "手机 138.0013.8000",
        "电话 62220212 34567894",  # two Beijing landlines, Luhn-valid as one number
        "加群 62220212 34567894",
        "订单 62220212 和 34567894 都没到",
        "订单 SO622202-1234567894005",
        "ticket #622202-1234567894005X",
        "位置 39.9042, 116.4074",
        "62220212.34567894",  # a decimal number
        "6222021234 567894",  # neither 8-8 nor 6-13
        "版本 1.6222.0212.3456.7894",  # a digit and a dot run into it: a version
        "概率 0.6222021234567894",  # a decimal
        "SN 3-6222-0212-3456-7894",  # a serial number
    ],
)
def test_numbers_typed_like_a_card_but_read_as_something_else_are_not_found(text):
    assert values(text) == []
