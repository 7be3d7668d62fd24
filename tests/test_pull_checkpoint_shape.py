"""A pull's checkpoint damaged by hand into the wrong shapes (an hour's entry a list, `hours`
a list) is one line naming it, never an internal error: probe30 found `auditor run --from` of
such a folder ending in exit 70 (AttributeError: 'list' object has no attribute 'get')."""

from __future__ import annotations

import logging

import orjson
import pytest
from click.testing import CliRunner
from test_archive_support import make_keys

from auditor.cli import main
from auditor.emulator.dataset import DEFAULT_START_MS, SyntheticHistory
from auditor.partitions import HOUR_MS
from auditor.resources import example_policy

WINDOW = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T03:00Z"]


def _invoke(*arguments):
    return CliRunner().invoke(main, [str(argument) for argument in arguments])


@pytest.fixture(scope="module")
def pulled(tmp_path_factory):
    """A folder `auditor pull --from` wrote: three hours of the synthetic history."""
    root = tmp_path_factory.mktemp("pulled")
    history = SyntheticHistory(messages=240, days=1)
    export = root / "export.jsonl"
    indices = history.index_range(DEFAULT_START_MS, DEFAULT_START_MS + 3 * HOUR_MS)
    export.write_bytes(b"".join(orjson.dumps(history.record(i)) + b"\n" for i in indices))
    result = _invoke("pull", "--from", export, "--out", root / "pull", *WINDOW)
    assert result.exit_code == 0, result.output
    return root / "pull"


def _damaged(pulled, tmp_path, damage):
    folder = tmp_path / "pull"
    folder.mkdir()
    for path in pulled.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    checkpoint = orjson.loads((folder / "checkpoint.json").read_bytes())
    damage(checkpoint)
    (folder / "checkpoint.json").write_bytes(orjson.dumps(checkpoint))
    return folder


DAMAGES = {
    "an hour's entry a list": lambda c: c["hours"].update({next(iter(c["hours"])): []}),
    "an hour's entry a number": lambda c: c["hours"].update({next(iter(c["hours"])): 7}),
    "hours a list": lambda c: c.update(hours=list(c["hours"])),
    "hours a text": lambda c: c.update(hours="2026110100"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_pull_into_a_folder_whose_checkpoint_has_the_wrong_shape_is_one_line(
    pulled, tmp_path, damage
):
    folder = _damaged(pulled, tmp_path, DAMAGES[damage])

    result = _invoke("pull", "--from", pulled.parent / "export.jsonl", "--out", folder, *WINDOW)

    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"auditor: error: {folder / 'checkpoint.json'}: not a checkpoint of auditor pull; use "
        "another --out\n"
    )


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_run_from_a_folder_whose_checkpoint_has_the_wrong_shape_is_no_internal_error(
    pulled, tmp_path, damage, caplog
):
    """The run archives the hours' own files and warns that what only the checkpoint told
    (files served, records no longer served) goes unreported."""
    caplog.set_level(logging.WARNING)
    folder = _damaged(pulled, tmp_path, DAMAGES[damage])
    keys = make_keys(tmp_path / "keys")

    result = _invoke(
        "run",
        "--from",
        folder,
        "--policies",
        example_policy(),
        "--key",
        keys[0].private_key,
        "--out",
        tmp_path / "archive",
        "--state",
        tmp_path / "state.db",
    )

    assert result.exit_code in (0, 1, 2), result.output
    assert "internal error" not in result.output
    assert "checkpoint.json: not a checkpoint of auditor pull" in caplog.text
