"""YAML as the auditor reads the files people write for it (config, policies).

Safe types only, and no aliases: an alias can name a list of aliases, so a file of a few hundred
bytes expands to billions of values ("billion laughs"), or to a value that holds itself. Anchors
without aliases change nothing and are let through; a nesting too deep to read is one error, not
a RecursionError.
"""

from __future__ import annotations

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


def safe_load(text: str) -> Any:
    """`yaml.safe_load` with `SafeLoader`; raises `yaml.YAMLError` (a marked one when it can)."""
    loader = SafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
