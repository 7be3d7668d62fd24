"""The bank identification numbers (BINs, the first six digits) of the cards China's largest
issuers hand out most, with the one length each BIN's cards have.

A number with one of these prefixes, exactly that length and a valid Luhn digit is a card far more
often than anything else. Of uniformly random 16- and 19-digit numbers, two to four in a million
pass all three (16 BINs of 16 digits and 36 of 19 among 900,000 six-digit prefixes, then one in
ten for Luhn), against one in ten for the scheme prefix and Luhn alone; of numbers that already
start `62` (an id, or two Beijing landlines `62xxxxxx 6xxxxxxx`), two to four in ten thousand.
`bank_card` uses them only where a number is otherwise too ambiguous to report: after a bare
`ID:` label, typed ungrouped, and as two 8-digit halves with no word beside them.

JR/T 0008-2000 (银行卡发卡行标识代码及卡号, the People's Bank of China's standard) fixes the
number's structure: a six-digit BIN, an account part and a Luhn check digit, 16 to 19 digits in
all; it leaves the BINs to China UnionPay, which publishes no table. The table here is taken
from the public BIN list of github.com/hexindai/bcbc (`data/bin.csv`, MIT licence, commit
0abf86a2f8903587826165c691742bcfb36769e2; columns `bin,bank,type,length`), kept to the debit
and credit BINs of ICBC, ABC, BOC, CCB, BOCOM, PSBC, CMB, CITIC, CMBC, CEB, Ping An and SPDB
whose cards have 16 or 19 digits. It is deliberately small: a card of a smaller bank is still
found wherever a card word, a payment word or its grouping says so; only the two ambiguous
layouts above need its prefix.
"""

from __future__ import annotations

ISSUED_LENGTHS: dict[str, int] = {
    # ICBC 工商银行, debit
    **dict.fromkeys(
        ("622200", "622202", "622203", "622208", "621225", "621226", "621288", "621558", "621559"),
        19,
    ),
    # ABC 农业银行, debit
    **dict.fromkeys(
        ("622823", "622827", "622841", "622845", "622846", "622848", "623052", "621282"), 19
    ),
    # BOC 中国银行, debit; its credit 622760
    **dict.fromkeys(("621660", "621661", "621663", "621756", "621785", "621786", "621790"), 19),
    "622760": 16,
    # CCB 建设银行, debit; its credit 622675
    **dict.fromkeys(("621700", "622700", "622280", "621284", "621467"), 19),
    "622675": 16,
    # BOCOM 交通银行, debit
    **dict.fromkeys(("622260", "622262"), 19),
    # PSBC 邮储银行, debit
    **dict.fromkeys(("621799", "621098", "622188", "622150", "621285"), 19),
    # CMB 招商银行, debit and its credit 622575
    **dict.fromkeys(("622588", "621483", "621485", "621486", "622580", "622609", "622575"), 16),
    # CITIC 中信, CMBC 民生, CEB 光大, Ping An 平安, SPDB 浦发: debit
    **dict.fromkeys(("622690", "621771", "622622", "621691", "622666", "622298", "621791"), 16),
}


def issued_card(digits: str) -> bool:
    """Whether `digits` start with one of `ISSUED_LENGTHS`' BINs and have its length (the caller
    checks Luhn)."""
    return ISSUED_LENGTHS.get(digits[:6]) == len(digits)
