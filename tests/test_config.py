"""The `run:` section of a config file is held to what the command line accepts."""

import pytest

from auditor.config import RUN_CHOICES, load_run_section
from auditor.errors import ConfigError
from auditor.executors import EXECUTORS


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("attachments: maybe", "run.attachments must be one of fetch, skip, not 'maybe'"),
        (
            "fail_on: extreme",
            "run.fail_on must be one of none, info, low, medium, high, not 'extreme'",
        ),
        ("ready_delay_hours: -500", "run.ready_delay_hours must be at least 0, not -500"),
        ("workers: 0", "run.workers must be at least 1, not 0"),
        ("key: null", "run.key is empty: give it a value or remove it"),
        ("out: ''", "run.out is empty: give it a value or remove it"),
        ("workers: two", "run.workers must be a whole number, not 'two'"),
        ("profile: lax", "run.profile must be one of loose, strict, not 'lax'"),
        ("executor: ray", "run.executor must be one of local, dask, not 'ray'"),
    ],
)
def test_a_value_the_command_line_would_refuse_is_refused_in_the_file(tmp_path, line, message):
    config = tmp_path / "auditor.yaml"
    config.write_text(f"run:\n  {line}\n")

    with pytest.raises(ConfigError) as refused:
        load_run_section(config)

    assert str(refused.value) == f"{config}: {message}"


def test_a_home_folder_in_a_run_path_is_expanded_as_a_shell_would(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = tmp_path / "etc" / "auditor.yaml"
    config.parent.mkdir()
    config.write_text("run:\n  out: ~/bags\n  state: ~nosuchuser42/state.db\n")

    assert load_run_section(config) == {
        "out": str(tmp_path / "home" / "bags"),
        "state": str(tmp_path / "etc" / "~nosuchuser42" / "state.db"),
    }


def test_values_the_command_line_accepts_pass_with_paths_made_relative_to_the_file(tmp_path):
    config = tmp_path / "auditor.yaml"
    config.write_text("run:\n  attachments: skip\n  ready_delay_hours: 0\n  out: bags\n")

    assert load_run_section(config) == {
        "attachments": "skip",
        "ready_delay_hours": 0,
        "out": str(tmp_path / "bags"),
    }


def test_the_file_offers_the_executors_the_command_line_offers():
    assert RUN_CHOICES["executor"] == EXECUTORS
