"""Config loading: defaults, ${ENV} references, relative paths, and one clear error per mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from integrator.config import Config, load_config
from integrator.errors import ConfigError

HERE = Path(__file__).parent
REPO = HERE.parent

BAD = {
    "bad-malformed.toml": ["malformed TOML", "line 2"],
    "bad-unknown-key.toml": ["[safety.max_removal] unknown key"],
    "bad-missing-env.toml": ["source.connection_string", "INTEGRATOR_TEST_UNSET_PASSWORD is not set"],
    "bad-no-source.toml": ["[source] Field required"],
    "bad-wrong-kind.toml": ["[source.kind]", "'odbc' or 'csv'"],
    "bad-query-and-preset.toml": ["[source]", "exactly one of `query` or `preset`"],
    "bad-schedule.toml": ["[schedule.sync]", "neither an interval"],
    "bad-exclude-rule.toml": ["[rules.exclude[0]]", "exactly one of `equals`, `in`, `matches`"],
    "bad-types.toml": ["[safety.max_removals]", "[safety.max_removal_percent]"],
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_config_names_file_key_and_problem(name: str) -> None:
    """Each broken config file fails with a message naming the file, the key and what is wrong."""
    with pytest.raises(ConfigError) as caught:
        load_config(HERE / "config" / name)
    message = str(caught.value)
    assert name in message
    for expected in BAD[name]:
        assert expected in message, message


def test_missing_file_is_a_config_error() -> None:
    """A config path that does not exist says so and suggests --config."""
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(HERE / "config" / "nope.toml")


def test_minimal_config_gets_documented_defaults() -> None:
    """Only [source] is required; the rest takes SPEC's defaults, relative paths anchored at the file."""
    config = load_config(HERE / "config" / "minimal.toml")
    assert config.rules.tag == "b2b" and config.accounts.activation == "link"
    assert config.store.url == f"sqlite:///{(HERE / 'config' / 'integrator.db').resolve()}"
    assert config.mail.file.directory == (HERE / "config" / "mail").resolve()
    assert (
        config.safety.max_removals,
        config.safety.max_removal_percent,
        config.safety.min_live_for_percent,
    ) == (
        500,
        20,
        20,
    )
    assert (config.schedule.sync, config.mail.deliver_after_sync) == ("15m", True)


def test_env_references_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """${NAME} in any string is replaced by the environment variable's value."""
    monkeypatch.setenv("B2B_SMTP_PASSWORD", "s3cret")
    path = tmp_path / "config.toml"
    path.write_text(
        (HERE / "config" / "minimal.toml").read_text() + '\n[mail.smtp]\npassword = "${B2B_SMTP_PASSWORD}"\n'
    )
    assert load_config(path).mail.smtp.password == "s3cret"


def _keys(model: type, prefix: str = "") -> list[str]:
    keys = []
    for name, info in model.model_fields.items():
        if name == "path" and model is Config:
            continue
        key = info.alias or name
        annotation = info.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            keys += _keys(annotation, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def test_example_config_loads_and_documents_every_key() -> None:
    """config.example.toml is valid and mentions every key the loader accepts."""
    load_config(REPO / "config.example.toml")
    text = (REPO / "config.example.toml").read_text()
    missing = []
    for key in _keys(Config):
        leaf = key.rsplit(".", 1)[-1]
        if key.startswith("rules.exclude") or key == "rules.exclude":
            continue
        if not re.search(rf"^#? ?{re.escape(leaf)} = ", text, re.MULTILINE):
            missing.append(key)
    assert missing == []
    for leaf in ("name", "field", "equals", "matches", "reason"):
        assert re.search(rf"^# {leaf} = ", text, re.MULTILINE), leaf
