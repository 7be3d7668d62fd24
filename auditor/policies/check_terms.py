"""What `auditor policy check` says of single terms and allowed phrases: a term so short it is
found inside most words that hold it, and an allowed phrase that excuses nothing.

Each is a `(line, subject, message, warning)`. A term file's are named five at a time, the rest
counted in one line: a vendor's list may hold thousands.
"""

from __future__ import annotations

from collections.abc import Callable

from auditor.policies.check_repeats import PerFile, Repeat
from auditor.policies.model import KeywordList, Term
from auditor.policies.normalize import is_wordish, normalizer


def short_terms(lists: tuple[KeywordList, ...]) -> list[Repeat]:
    """Terms of one character once normalised that are found inside words (a Chinese character
    always is: 钱 in 钱包 and 价钱), and of two in a list that is not whole words."""
    found: list[Repeat] = []
    for keyword_list in lists:
        normalize = normalizer(keyword_list.normalize).normalize
        per_file = PerFile()
        for term in keyword_list.terms:
            key = normalize(term.text)
            inside = not keyword_list.whole_words or not is_wordish(key[0])
            if not (len(key) == 1 and inside) and not (
                len(key) == 2 and not keyword_list.whole_words
            ):
                continue
            if not per_file.names(term.file):
                continue
            found.append(
                _warning(
                    keyword_list,
                    term,
                    f"term {term.text!r}",
                    f"is {_characters(len(key))} once normalised, found inside every word that "
                    "holds it: most messages that use one are findings; list the words it is "
                    "part of instead",
                )
            )
        found.extend(per_file.rest(keyword_list, "of its terms are as short"))
    return found


def idle_phrases(
    keyword_list: KeywordList, normalize: Callable[[str], str], keys: set[str]
) -> list[Repeat]:
    """The allowed phrases that hold no term of their list once normalised, so excuse nothing
    (a typo, or a phrase meant for another list); of a term file, the first few and a count."""
    found = []
    per_file = PerFile()
    longest = max(map(len, keys), default=0)
    for phrase in keyword_list.allow:
        text = normalize(phrase.text)
        if any(
            text[start:end] in keys
            for start in range(len(text))
            for end in range(start + 1, min(start + longest, len(text)) + 1)
        ):
            continue
        if not per_file.names(phrase.file):
            continue
        found.append(
            _warning(
                keyword_list,
                phrase,
                f"allowed phrase {phrase.text!r}",
                "holds no term of the list, so it excuses nothing: correct it, or move it to "
                "the list whose term it holds",
            )
        )
    found.extend(per_file.rest(keyword_list, "of its phrases hold no term of the list"))
    return found


def _warning(keyword_list: KeywordList, item: Term, subject: str, why: str) -> Repeat:
    """A warning of one term or phrase: at its own line, or of a term file at the list's line
    with the file's name and line after `subject`."""
    where = f" ({item.file}:{item.line})" if item.file else ""
    line = keyword_list.line if item.file else item.line
    return (line, keyword_list.id, f"{subject}{where} {why}", True)


def _characters(count: int) -> str:
    return "one character" if count == 1 else f"{count} characters"
