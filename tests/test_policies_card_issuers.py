"""Cards of China's largest issuers (their BIN, length and Luhn digit, `card_bins`) are found in
the two layouts that are otherwise too ambiguous to report: ungrouped after a bare `ID:`-style
label, and as two 8-digit halves with no card or payment word. What names the number otherwise (a
system's label, a phone, QQ or order word, an area code before it) keeps it quiet, and so does a
listed BIN with another length or a failed Luhn digit."""

import pytest
from test_policies_card_corpus import cards

from auditor.policies.detectors.bank_card import has_issuer_shape, luhn_ok
from auditor.policies.detectors.card_bins import ISSUED_LENGTHS

ICBC_19 = "6222021234567890128"  # 622202: ICBC debit, 19 digits
CMB_16 = "6225881234567898"  # 622588: CMB debit, 16 digits
ICBC_16 = "6222021234567894"  # ICBC's BIN at a length ICBC does not issue
OTHER_62 = "6234561234567895"  # a 62 number of no listed BIN


@pytest.mark.parametrize(
    "text",
    [
        f"ID: {ICBC_19}",
        f"uid:{CMB_16}",
        f"编号{ICBC_19}，已处理",
        f"用户ID：{ICBC_19}",
        f"你看下ref {CMB_16}",
        f"pls check Ref#{ICBC_19}",
        f"ID：{ICBC_19}".translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    ],
)
def test_an_issuers_card_after_a_bare_label_is_found(text):
    assert len(cards(text)) == 1


@pytest.mark.parametrize(
    "text",
    [
        f"ID: {ICBC_16}",
        f"ID: {OTHER_62}",
        f"ID: {ICBC_19[:-1]}9",  # the Luhn digit wrong
        f"消息ID:{ICBC_19}",
        f"订单编号：{ICBC_19}",
        f"订单ID {ICBC_19}",
        f"设备ID {ICBC_19}",
        f"order id {CMB_16}",
        f"msg_id={CMB_16}",
    ],
)
def test_an_id_after_a_label_stays_quiet_unless_an_issuers_card(text):
    assert cards(text) == []


@pytest.mark.parametrize(
    "text",
    [
        f"{CMB_16[:8]} {CMB_16[8:]}",
        f"pls send to {CMB_16[:8]}–{CMB_16[8:]}",
        f"工资发到 {CMB_16[:8]}  {CMB_16[8:]}",
        f"工行 {OTHER_62[:8]} {OTHER_62[8:]} 张三",  # a bank's name
        f"麻烦转到这个 {OTHER_62[:8]} {OTHER_62[8:]}",  # a transfer verb
    ],
)
def test_halves_of_an_issuers_card_or_beside_a_bank_or_transfer_are_found(text):
    assert len(cards(text)) == 1


@pytest.mark.parametrize(
    "text",
    [
        f"电话 {CMB_16[:8]} {CMB_16[8:]}",
        f"QQ {CMB_16[:8]} {CMB_16[8:]}",
        f"orders {CMB_16[:8]} {CMB_16[8:]} shipped",
        f"{OTHER_62[:8]} {OTHER_62[8:]}",  # two QQ or landline numbers, no listed BIN
        f"转账前先打电话 {OTHER_62[:8]} {OTHER_62[8:]}",  # a landline pair beside a payment word
        f"工行电话 {OTHER_62[:8]} {OTHER_62[8:]}",
        f"010-{CMB_16[:8]} {CMB_16[8:]}",  # an area code, then two numbers
        f"office 0755 {CMB_16[:8]} {CMB_16[8:]}",
        f"打款 010 {OTHER_62[:8]} {OTHER_62[8:]}",  # a payment word does not make it a card
    ],
)
def test_halves_and_groups_that_name_something_else_stay_quiet(text):
    assert cards(text) == []


def test_the_bin_table_is_a_few_dozen_unionpay_bins_of_a_card_length():
    assert 30 <= len(ISSUED_LENGTHS) <= 60
    for prefix, length in ISSUED_LENGTHS.items():
        assert len(prefix) == 6 and prefix.startswith("62") and length in (16, 19), prefix
        assert has_issuer_shape(prefix + "0" * (length - 6)), prefix
    assert luhn_ok(ICBC_19) and luhn_ok(CMB_16) and luhn_ok(ICBC_16) and luhn_ok(OTHER_62)
