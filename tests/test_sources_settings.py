"""Connection settings: flags over environment over config file; the secret never from a flag."""

import pytest

from auditor.errors import ConfigError
from auditor.sources.hourfiles import HourFileSource
from auditor.sources.legacy import LegacyQuerySource
from auditor.sources.settings import load_settings, make_source

ENV = {
    "EASEMOB_BASE_URL": "http://env.example:1",
    "EASEMOB_ORG": "env-org",
    "EASEMOB_APP": "env-app",
    "EASEMOB_CLIENT_ID": "env-client",
    "EASEMOB_CLIENT_SECRET": "env-secret",
}


def write_config(tmp_path, text):
    path = tmp_path / "auditor.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_flags_win_over_the_environment_which_wins_over_the_config_file(tmp_path):
    config = write_config(
        tmp_path,
        "source:\n  base_url: http://file.example\n  org: file-org\n  app: file-app\n"
        "  client_id: file-client\n  api: legacy\n  hour_timezone: '+8'\n",
    )
    env = {key: value for key, value in ENV.items() if key != "EASEMOB_APP"}
    settings = load_settings({"org": "flag-org", "app": None}, config_file=config, environ=env)
    assert (settings.base_url, settings.org, settings.app) == (
        "http://env.example:1",
        "flag-org",
        "file-app",
    )
    assert (settings.client_id, settings.api, settings.hour_timezone) == (
        "env-client",
        "legacy",
        "+8",
    )


def test_the_secret_is_read_from_the_file_the_environment_names(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n", encoding="utf-8")
    env = {**ENV, "EASEMOB_CLIENT_SECRET": "", "EASEMOB_CLIENT_SECRET_FILE": str(secret_file)}
    assert load_settings(environ=env).client_secret == "from-a-file"


def test_the_secret_is_read_from_the_file_the_config_names(tmp_path):
    (tmp_path / "secret").write_text("file-secret", encoding="utf-8")
    config = write_config(tmp_path, f"source:\n  client_secret_file: {tmp_path / 'secret'}\n")
    env = {key: value for key, value in ENV.items() if key != "EASEMOB_CLIENT_SECRET"}
    assert load_settings(config_file=config, environ=env).client_secret == "file-secret"


def test_a_secret_given_as_a_flag_is_refused():
    with pytest.raises(ConfigError, match="never taken from a flag"):
        load_settings({"client_secret": "oops"}, environ=ENV)


def test_a_secret_written_into_the_config_file_is_refused(tmp_path):
    config = write_config(tmp_path, "source:\n  client_secret: oops\n")
    with pytest.raises(ConfigError, match="client_secret is not read from a config file"):
        load_settings(config_file=config, environ=ENV)


def test_every_missing_piece_is_named_at_once():
    with pytest.raises(ConfigError) as caught:
        load_settings({"org": "o"}, environ={})
    assert str(caught.value) == (
        "missing connection settings: --base-url or EASEMOB_BASE_URL; --app or EASEMOB_APP; "
        "--client-id or EASEMOB_CLIENT_ID; EASEMOB_CLIENT_SECRET or EASEMOB_CLIENT_SECRET_FILE"
    )


def test_a_config_file_with_an_unknown_key_names_file_and_key(tmp_path):
    config = write_config(tmp_path, "source:\n  base_ur1: http://x\n")
    with pytest.raises(ConfigError, match=r"auditor.yaml: unknown key source.base_ur1"):
        load_settings(config_file=config, environ=ENV)


def test_a_config_file_that_is_not_yaml_names_file_and_line(tmp_path):
    config = write_config(tmp_path, "source:\n  org: [unclosed\n")
    with pytest.raises(ConfigError, match=r"auditor.yaml:\d+: not valid YAML"):
        load_settings(config_file=config, environ=ENV)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"base_url": "ftp://x"}, "must start with http:// or https://"),
        ({"api": "graphql"}, "api 'graphql' is not one of hourfiles, legacy"),
        ({"hour_timezone": "Mars"}, "time zone 'Mars'"),
        ({"hour_timezone": "+05:30"}, r"hour time zone '\+05:30' is not a whole number of hours"),
        ({"timeout": 0}, "timeout must be above 0"),
        ({"timeout": float("nan")}, "timeout must be a finite number, not nan"),
        ({"timeout": "inf"}, "timeout must be a finite number, not inf"),
        ({"backoff_cap": float("inf")}, "backoff_cap must be a finite number, not inf"),
        ({"base_url": "http://[::1"}, r"base URL 'http://\[::1' is not a URL \(Invalid IPv6 URL\)"),
        ({"base_url": "http://h:99999"}, r"base URL 'http://h:99999' is not a URL \(Port out"),
        ({"org": [1]}, r"org must be text, not \[1\]"),
        ({"client_id": {"a": 1}}, r"client_id must be text, not \{'a': 1\}"),
        ({"attachment_downloads": 0}, "attachment_downloads must be 1-32, not 0"),
        ({"attachment_downloads": 33}, "attachment_downloads must be 1-32, not 33"),
        ({"attachment_downloads": 2.5}, "attachment_downloads must be a whole number, not 2.5"),
        ({"max_retries": True}, "max_retries must be a whole number, not True"),
        ({"retention_days": 0.5}, r"retention_days must be at least 1 \(the days the source keeps"),
        ({"retention_days": -3}, "retention_days must be at least 1 "),
        ({"retention_days": "three"}, "retention_days must be a number, not 'three'"),
    ],
)
def test_bad_values_are_refused_with_their_name(flags, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(flags, environ=ENV)


def test_the_secret_stays_out_of_the_repr():
    assert "env-secret" not in repr(load_settings(environ=ENV))


def test_the_factory_builds_the_api_the_settings_name():
    assert isinstance(make_source(load_settings(environ=ENV)), HourFileSource)
    legacy = make_source(load_settings({"api": "legacy"}, environ=ENV))
    assert isinstance(legacy, LegacyQuerySource)
    assert legacy.describe() == {
        "api": "legacy",
        "base_url": "http://env.example:1",
        "org": "env-org",
        "app": "env-app",
        "hour_timezone": "UTC",
    }


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("source: &s\n  org: o\nrun: *s\n", r"auditor.yaml:3: not valid YAML \(aliases"),
        ("source:\n  org: " + "[" * 5000 + "]" * 5000 + "\n", r"auditor.yaml:2: .*nested more"),
    ],
)
def test_a_config_file_with_aliases_or_endless_nesting_is_refused_by_line(tmp_path, body, problem):
    config = write_config(tmp_path, body)
    with pytest.raises(ConfigError, match=problem):
        load_settings(config_file=config, environ=ENV)


def test_a_secret_file_that_is_not_text_is_refused_without_showing_it(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"\xff\xfe\x00bad")
    env = {key: value for key, value in ENV.items() if key != "EASEMOB_CLIENT_SECRET"}
    env["EASEMOB_CLIENT_SECRET_FILE"] = str(secret)

    with pytest.raises(ConfigError) as refused:
        load_settings(environ=env)

    assert str(refused.value) == (
        f"the client secret file {secret} named by EASEMOB_CLIENT_SECRET_FILE is not UTF-8 text"
    )


def test_attachment_downloads_come_from_the_config_file_unless_a_flag_says(tmp_path):
    config = write_config(tmp_path, "source:\n  attachment_downloads: 3\n")
    assert load_settings(config_file=config, environ=ENV).attachment_downloads == 3
    flagged = load_settings({"attachment_downloads": 12}, config_file=config, environ=ENV)
    assert flagged.attachment_downloads == 12
    assert load_settings(environ=ENV).attachment_downloads == 8


def test_the_retention_of_hour_files_is_3_days_unless_the_environment_or_config_says(tmp_path):
    config = write_config(tmp_path, "source:\n  retention_days: 90\n")
    from_file = load_settings(config_file=config, environ=ENV)
    from_env = load_settings(config_file=config, environ={**ENV, "EASEMOB_RETENTION_DAYS": "7"})

    assert load_settings(environ=ENV).retention_days == 3
    assert (from_file.retention_days, from_env.retention_days) == (90, 7)
    assert make_source(from_env).retention_days == 7
