"""Whether a match of a pinyin spelling (see `pinyin`) is a person's or a place's name.

Chinese names and places are written in pinyin, and some spell a listed term: 杜品 is `Du Pin`
(毒品), 陶先 `Tao Xian` (套现), 邢辉 `Xing Hui` (行贿), 汇口 `Huikou` (回扣), and Poe's
detective is `Dupin`. The spelling alone cannot tell them apart; what is written around a name
can, and a spelled match is taken for a name when:
- a title or a mention is just before it (`Mr. Tao Xian`, `Dr Du Bo`, `@du pin`), or a Chinese
  title or honorific just after it (`Tao Xian先生`, `Fan Qiang老师`), in any case;
- a greeting is just before it and it is written as a name, each word capitalised (`Hi Fan
  Qiang`; `hi du pin` is still the term);
- it is one word written as a name in running Latin text, after a word (`the Dupin stories`,
  `ask Xinghui`, `Zhang Xinghui`): pinyin typed to pass a filter is lower case, capitalised
  at the start of a sentence, or capitalised syllable by syllable (`DuPin`), not this;
- it is written as a name and another word written as one follows it (`Xinghui Zhang`,
  `Huikou Road`).
A name of several words after a word (`he said Tao Xian is`) is left reported: it is the shape
the term is typed in when each syllable is capitalised (`he said Zha Pian is no problem`), and
telling them apart lost five of 165 evasions of the corpus (tests/corpora/pinyin_chat.jsonl)
while it quietened no name there.
"""

from __future__ import annotations

import re

_TITLE_BEFORE = re.compile(r"(?:\b(?:mr|mrs|ms|miss|dr|prof)\.?\s*|@\s*)\Z", re.IGNORECASE)
_GREETING_BEFORE = re.compile(r"\b(?:hi|hello|hey|dear)\b,?\s*\Z", re.IGNORECASE)
_HONORIFIC_AFTER = re.compile(r"\s*(?:先生|女士|小姐|老师|教授|医生|博士|同学|经理)")
_AFTER_A_WORD = re.compile(r"[A-Za-z]\s+\Z")
_NAME_AFTER = re.compile(r"\s+[A-Z][a-z]+\b")
_NAME = re.compile(r"[A-Z][a-z]+(?: [A-Z][a-z]+)*")
_LOOK_BACK = 24
"""Characters before a match that are read for what precedes it."""


def is_name(text: str, start: int, end: int) -> bool:
    """Whether the spelled match at raw `[start, end)` of `text` is a name by what is around it."""
    low = max(0, start - _LOOK_BACK)
    if _TITLE_BEFORE.search(text, low, start) or _HONORIFIC_AFTER.match(text, end):
        return True
    if _NAME.fullmatch(text, start, end) is None:
        return False
    if _GREETING_BEFORE.search(text, low, start) or _NAME_AFTER.match(text, end):
        return True
    return " " not in text[start:end] and _AFTER_A_WORD.search(text, low, start) is not None
