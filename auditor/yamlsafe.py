"""YAML as the auditor reads the files people write for it (config, policies).

Safe types only, and no aliases: an alias can name a list of aliases, so a file of a few hundred
bytes expands to billions of values ("billion laughs"), or to a value that holds itself. Anchors
without aliases change nothing and are let through; a nesting too deep to read is one error, not
a RecursionError.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# Far deeper than any config or policy is written, far below what exhausts Python's stack.
MAX_DEPTH = 100


class SafeLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` refusing aliases and documents nested beyond `MAX_DEPTH`."""

    _depth = 0  # of the node being composed

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed: write the value out", event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested more than {MAX_DEPTH} levels deep",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        """A scalar its tag cannot read (`!!int abc`, `!!bool maybe`, `!!timestamp x`, an
        integer of more than 4,300 digits, which `int` refuses) is a marked error: PyYAML's
        scalar constructors let their ValueError, KeyError, AttributeError or IndexError
        through, which stopped the command as an internal error (exit 70). Only what each of
        those constructors raises on bad text is caught (`_UNREADABLE`): any other exception is
        a bug, and stays one."""
        unreadable = _UNREADABLE.get(node.tag, ()) if isinstance(node, yaml.ScalarNode) else ()
        try:
            value = super().construct_object(node, deep)
        except unreadable:
            kind = str(node.tag).rsplit(":", 1)[-1]
            raise yaml.constructor.ConstructorError(
                None, None, f"{_shown(node.value)} cannot be read as {kind}", node.start_mark
            ) from None
        if type(value) is str and _SURROGATE.search(value):
            return _without_escaped_pairs(value, node)
        return value


# What `yaml.SafeConstructor`'s scalar constructors raise on text their tag cannot read: int and
# float index the first character (an empty value) and call `int`/`float`; bool looks the word
# up; timestamp reads the groups of a regex match that may be None, and `datetime` refuses a
# day or zone out of range. `!!binary` and the rest raise ConstructorError themselves.
_UNREADABLE: dict[str, tuple[type[Exception], ...]] = {
    "tag:yaml.org,2002:int": (ValueError, IndexError),
    "tag:yaml.org,2002:float": (ValueError, IndexError),
    "tag:yaml.org,2002:bool": (KeyError,),
    "tag:yaml.org,2002:timestamp": (AttributeError, ValueError),
}


_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_escaped_pairs(text: str, node: Any) -> str:
    """`text` with each pair of surrogates a `"\\ud83d\\ude00"` escape wrote (as JSON spells a
    character past U+FFFF, which YAML writes `\\U0001f600`) made the one character it spells,
    as JSON reads it. A lone half is no text: UTF-8 cannot hold it, so the files a run writes
    from the policy (its report) could not, and the run stopped as an internal error."""
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    lone = _SURROGATE.search(joined)
    if lone is None:
        return joined
    raise yaml.constructor.ConstructorError(
        None,
        None,
        f"{_shown(text)} holds a lone surrogate (U+{ord(lone.group()):04X}), half of a "
        "character: write the character itself, or \\U and its 8 hex digits",
        node.start_mark,
    )


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:39] + "…"


def located_problem(error: yaml.YAMLError, text: str) -> tuple[int | None, str]:
    """The line (from 1) of a YAML error in `text`, None when unknown, and its problem in one
    line: PyYAML's own message spans two, and a character YAML refuses (a NUL) is reported by
    position, before any line mark exists."""
    if isinstance(error, yaml.reader.ReaderError):
        line = text.count("\n", 0, error.position) + 1
        return line, f"unacceptable character #x{error.character:04x}: {error.reason}"
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "not valid YAML"
        return (mark.line + 1 if mark else None), problem
    return None, " ".join(str(error).split())


def safe_load(text: str) -> Any:
    """`yaml.safe_load` with `SafeLoader`; raises `yaml.YAMLError` (a marked one when it can)."""
    loader = SafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
