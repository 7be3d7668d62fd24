"""README's examples are what a newcomer copies first: its config is accepted as written, the
flags it names exist, and the settings it calls file-only have no flag."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.config import load_run_section
from auditor.sources.settings import load_settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def readme_config() -> str:
    """The `auditor.yaml` README shows, the YAML block after "holds every setting"."""
    after = README[README.index("`auditor.yaml` holds every setting") :]
    return re.search(r"```yaml\n(.*?)```", after, re.S)[1]


def test_the_readme_config_is_accepted_as_written_with_every_value_it_shows(tmp_path):
    config = tmp_path / "auditor.yaml"
    config.write_text(readme_config())
    (tmp_path / "secret").write_text("s3cret")

    source = load_settings(
        config_file=config, environ={"EASEMOB_CLIENT_SECRET_FILE": str(tmp_path / "secret")}
    )
    run = load_run_section(config)

    assert (source.org, source.app, source.api, source.retention_days) == (
        "my-org", "my-app", "hourfiles", 3,
    )  # fmt: skip
    assert (source.timeout, source.max_retries, source.backoff_base, source.backoff_cap) == (
        30, 6, 0.5, 30,
    )  # fmt: skip
    assert (run["workers"], run["late_hours"], run["namespace"]) == (2, 48, "easemob-auditor")


def run_flags() -> set[str]:
    help_text = CliRunner().invoke(main, ["run", "--help"], terminal_width=200).output
    return set(re.findall(r"(--[a-z][a-z-]+)", help_text))


@pytest.mark.parametrize(
    "flag",
    ["--timeout", "--retries", "--incremental", "--since", "--late-hours", "--retention-days"],
)
def test_a_flag_the_readme_names_for_a_setting_exists(flag):
    assert flag in run_flags()


def test_the_settings_the_readme_calls_file_only_have_no_flag():
    said = README[README.index("flags win). ") :].split(" are set in the file only")[0]
    file_only = re.findall(r"`([a-z_]+)`", said)
    assert len(file_only) == 5
    assert not {"--" + key.replace("_", "-") for key in file_only} & run_flags()
