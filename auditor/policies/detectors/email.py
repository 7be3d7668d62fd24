"""E-mail addresses: a dot-atom local part, `@`, and a domain whose last label is a top-level one.

Internationalised addresses (RFC 6531/6532) count: a local part and domain labels may hold
letters and digits of any script (`用户@例子.公司`, `x@bücher.de`), and the top-level label is
ASCII letters, a punycode label (`xn--fiqs8s`) or letters of one non-Latin script. Chinese is
written without spaces, so an address typed straight after Chinese words takes those words into
its local part, but for the label words people write before an address (`邮箱张三@例子.中国` is
`张三@例子.中国`): nothing else in the text says where the name begins.
"""

from __future__ import annotations

import re

from auditor.policies.detectors.interface import Candidate, Detector

_ALNUM = r"[^\W_]"  # a letter or digit of any script
_LABEL = rf"{_ALNUM}(?:[\w-]{{0,61}}{_ALNUM})?"
# A local part is written in one kind of script: letters and digits of alphabetic scripts with
# `.%+-_` (ASCII ones the usual case), or CJK letters alone. `邮箱123456@qq.com` is the address
# `123456@qq.com` after the word 邮箱, not one address: a mixed local part is read from the switch.
_SPACED = r"(?:[^\W\u2e80-\U0010ffff]|[.%+-])"
_CJK = r"(?:(?=[\u2e80-\U0010ffff])[^\W\d_])"
_LOCAL = rf"(?:(?<!{_SPACED}){_SPACED}{{1,64}}|(?<!{_CJK}){_CJK}{{1,64}})"
# ASCII letters; punycode; or letters outside ASCII with no ASCII letter among them (a Chinese
# top-level label is followed by more Chinese text only where the writer left no space).
_TOP = (
    r"(?:[A-Za-z]{2,24}(?![A-Za-z0-9-])|[Xx][Nn]--[A-Za-z0-9-]{1,59}(?![A-Za-z0-9-])"
    r"|[^\W\d_A-Za-z]{2,24})"
)


# Words that label an address, not part of a Chinese local part that starts with them.
_LABEL_WORDS = re.compile("(?:邮箱地址|电子邮箱|电子邮件|邮箱|邮件|电邮|邮址)(?=[^@])").match


class EmailDetector(Detector):
    name = "email"
    description = "E-mail address (internationalised ones too)"
    pattern = re.compile(rf"{_LOCAL}@(?:{_LABEL}\.)+{_TOP}")
    literals = ("@",)
    base_confidence = "high"
    context_words = ("邮箱", "邮件", "mail")

    def find(self, text: str) -> list[Candidate]:
        found = super().find(text)
        for index, (start, end, value) in enumerate(found):
            label = _LABEL_WORDS(value)
            if label is not None:
                cut = label.end()
                found[index] = Candidate(start + cut, end, value[cut:])
        return found

    def canonical(self, raw: str) -> str:
        return raw.lower()

    def is_valid(self, value: str) -> bool:
        local = value.split("@", 1)[0]
        return not (local.startswith(".") or local.endswith(".") or ".." in local)
