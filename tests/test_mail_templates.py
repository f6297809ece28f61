"""Mail templates: every one renders in both locales and both modes; overrides replace them file by file."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrator.config import Config, config_from_dict
from integrator.mail.templates import (
    KINDS,
    LOCALES,
    MODES,
    check_templates,
    make_environment,
    normalize_locale,
    render,
    sample_context,
)


def _config(tmp_path: Path, templates_dir: Path | None = None) -> Config:
    mail = {"templates_dir": str(templates_dir)} if templates_dir else {}
    return config_from_dict({"source": {"kind": "csv", "path": "erp.csv"}, "mail": mail}, tmp_path / "config.toml")


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_template_renders_in_both_locales_and_modes(kind: str, mode: str, locale: str) -> None:
    """Each mail kind renders a one-line subject, a text part and an HTML part with the customer's details."""
    context = sample_context(locale, mode)
    rendered = render(make_environment(), kind, mode, locale, context)
    assert rendered.subject and "\n" not in rendered.subject
    assert context["login"] in rendered.text and context["login"] in rendered.html
    assert context["sales_rep_name"] in rendered.text and context["sales_rep_email"] in rendered.html
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>") and f'lang="{locale}"' in rendered.html
    if kind in ("activation", "password_reset"):
        secret = context["link"] if mode == "link" else context["temporary_password"]
        assert secret in rendered.text and secret in rendered.html
        assert context["expires_at"] in rendered.text
    if kind == "login_changed":
        assert context["old_login"] in rendered.text


def test_html_part_is_escaped_and_text_part_is_not() -> None:
    """Markup in ERP data is escaped in HTML only; the text part shows it verbatim."""
    rendered = render(make_environment(), "activation", "link", "pl", sample_context("pl", "link"))
    assert "Żółć &amp; Syn &lt;sp. z o.o.&gt;" in rendered.html
    assert "Żółć & Syn <sp. z o.o.>" in rendered.text


def test_polish_and_english_templates_differ() -> None:
    """The locale selects the language of subject and body."""
    env = make_environment()
    pl = render(env, "activation", "link", "pl", sample_context("pl", "link"))
    en = render(env, "activation", "link", "en", sample_context("en", "link"))
    assert "Aktywacja" in pl.subject and "Activate" in en.subject
    assert "Dzień dobry" in pl.text and "Hello" in en.text


def test_shipped_templates_pass_the_check(tmp_path: Path) -> None:
    """`check_templates` finds nothing wrong with the shipped set."""
    assert check_templates(_config(tmp_path)) == []


def test_override_folder_replaces_one_template(tmp_path: Path) -> None:
    """A consultant's file replaces the shipped one of the same name; every other template stays shipped."""
    folder = tmp_path / "overrides"
    (folder / "pl").mkdir(parents=True)
    (folder / "pl" / "activation_link.subject.j2").write_text("Witamy, {{ customer_name }}!", encoding="utf-8")
    env = make_environment(folder)
    context = sample_context("pl", "link")
    rendered = render(env, "activation", "link", "pl", context)
    assert rendered.subject == f"Witamy, {context['customer_name']}!"
    assert "Aby aktywować konto" in rendered.text  # the shipped text part
    assert render(env, "activation", "link", "en", sample_context("en", "link")).subject.startswith("Activate")
    assert check_templates(_config(tmp_path, folder)) == []


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("pl/activation_link.txt.j2", "Dzień dobry {% if %}", "pl/activation_link.txt.j2:1: syntax error"),
        ("en/password_reset_link.html.j2", "<p>{{ lnik }}</p>", "'lnik' is undefined"),
        ("pl/activation_lnk.txt.j2", "{{ link }}", "activation_lnk.txt.j2 is not a template name"),
        ("en/activation_password.txt.j2", "Hello {{ login }}", "does not show the temporary password"),
        ("pl/login_changed.subject.j2", "{{ '' }}", "renders an empty subject"),
    ],
)
def test_check_templates_reports_a_broken_override(tmp_path: Path, name: str, content: str, expected: str) -> None:
    """A broken override is reported by name at setup time instead of failing a mail later."""
    folder = tmp_path / "overrides"
    (folder / name).parent.mkdir(parents=True)
    (folder / name).write_text(content, encoding="utf-8")
    problems = check_templates(_config(tmp_path, folder))
    assert any(expected in p for p in problems), problems


def test_check_templates_reports_a_missing_override_folder(tmp_path: Path) -> None:
    """A `templates_dir` that does not exist is a problem, not a silent fallback to the shipped set."""
    problems = check_templates(_config(tmp_path, tmp_path / "nowhere"))
    assert problems and "is not a folder" in problems[0]


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [(("pl_PL",), "pl"), (("EN-gb",), "en"), ((None, "en"), "en"), (("de", None), "pl"), ((None, None), "pl")],
)
def test_locale_falls_back_to_the_default(candidates: tuple[str | None, ...], expected: str) -> None:
    """The mail's or account's locale is used when we have templates for it, else the configured default."""
    assert normalize_locale(*candidates, default="pl") == expected
