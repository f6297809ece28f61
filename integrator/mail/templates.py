"""Mail templates: the shipped set (package `templates`), overridable file by file from a consultant's folder.

A template is `<locale>/<name>.<part>.j2` (see `templates/__init__.py`). Only HTML parts are autoescaped; the
subject and text parts are plain text. Undefined variables are errors, so `check_templates` finds a typo in an
override at setup time instead of a blank in a customer's mail.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2

from integrator.config import Config

__all__ = [
    "KINDS",
    "LOCALES",
    "MODES",
    "Rendered",
    "check_templates",
    "make_environment",
    "normalize_locale",
    "render",
    "sample_context",
    "template_stem",
]

LOCALES = ("pl", "en")
MODES = ("link", "password")
KINDS = ("activation", "password_reset", "login_changed", "account_removed")
PARTS = ("subject", "txt", "html")
_MODAL_KINDS = frozenset({"activation", "password_reset"})
_SHIPPED_PACKAGE = "integrator.templates"


@dataclass(frozen=True)
class Rendered:
    """One mail's rendered parts."""

    subject: str
    text: str
    html: str


def template_stem(kind: str, mode: str) -> str:
    """The file stem for a mail kind: credential mails differ by activation mode, the others do not."""
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}; valid: {', '.join(KINDS)}")
    return f"{kind}_{mode}" if kind in _MODAL_KINDS else kind


def normalize_locale(*candidates: str | None, default: str) -> str:
    """The first candidate we have templates for (`pl_PL`, `PL`, `en-GB` count), else `default`."""
    for candidate in candidates:
        if candidate:
            language = candidate.strip().replace("-", "_").split("_")[0].lower()
            if language in LOCALES:
                return language
    return default


class _ShippedLoader(jinja2.BaseLoader):
    """Loads the shipped templates through importlib.resources (works from a wheel or a zip)."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, Callable[[], bool]]:
        resource = importlib.resources.files(_SHIPPED_PACKAGE)
        for part in template.split("/"):
            if part in ("", ".", ".."):
                raise jinja2.TemplateNotFound(template)
            resource = resource.joinpath(part)
        if not resource.is_file():
            raise jinja2.TemplateNotFound(template)
        return resource.read_text(encoding="utf-8"), None, lambda: True

    def list_templates(self) -> list[str]:
        root = importlib.resources.files(_SHIPPED_PACKAGE)
        found = []
        for locale in LOCALES:
            folder = root.joinpath(locale)
            if folder.is_dir():
                found += [f"{locale}/{item.name}" for item in folder.iterdir() if item.name.endswith(".j2")]
        return sorted(found)


def _autoescape(name: str | None) -> bool:
    return bool(name) and name.endswith(".html.j2")  # type: ignore[union-attr]


def make_environment(templates_dir: Path | None = None) -> jinja2.Environment:
    """A Jinja2 environment: the override folder first (when given), then the shipped templates. It never reloads
    a template it has loaded (checking costs a `stat` of three files a mail); each delivery makes its own, so an
    edited template is used from the next delivery on."""
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(templates_dir), encoding="utf-8"))
    loaders.append(_ShippedLoader())
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )


def _one_line(text: str) -> str:
    # A subject is one header line: newlines in it would be a header injection.
    return " ".join(text.split())


def render(env: jinja2.Environment, kind: str, mode: str, locale: str, context: Mapping[str, Any]) -> Rendered:
    """Render a mail's subject, text and HTML parts; raises Jinja2's errors for a broken template."""
    stem = f"{locale}/{template_stem(kind, mode)}"
    subject = _one_line(env.get_template(f"{stem}.subject.j2").render(context))
    if not subject:
        raise jinja2.TemplateError(f"{stem}.subject.j2 renders an empty subject")
    full = {**context, "subject": subject}
    text = env.get_template(f"{stem}.txt.j2").render(full)
    html = env.get_template(f"{stem}.html.j2").render(full)
    return Rendered(subject=subject, text=text, html=html)


def sample_context(locale: str, mode: str, *, contact: bool = False) -> dict[str, Any]:
    """Plausible values for every template variable (used by `check` and the tests): a per-customer account's,
    or with `contact` the account of a contact person of that customer."""
    expires = datetime(2030, 1, 31, 14, 0) + timedelta(hours=48)
    return {
        "locale": locale,
        "customer_name": "Hurtownia Żółć & Syn <sp. z o.o.>",
        "contact_name": "Łucja Wąsik-Żak" if contact else None,
        "login": "zamowienia@zolc.example.pl",
        "old_login": "biuro@zolc.example.pl",
        "portal_url": "https://b2b.example.com",
        "link": "https://b2b.example.com/activate?token=1.SAMPLE" if mode == "link" else None,
        "temporary_password": "Sample-Pass-Word-Xy7" if mode == "password" else None,
        "expires_at": f"{expires:%d.%m.%Y %H:%M} (UTC)",
        "valid_hours": 48,
        "sender": "Hurtownia B2B <no-reply@b2b.example.com>",
        "sender_name": "Hurtownia B2B",
        "sender_email": "no-reply@b2b.example.com",
        "reply_to": "biuro@b2b.example.com",
        "sales_rep_name": "Łukasz Wąsowski",
        "sales_rep_email": "l.wasowski@b2b.example.com",
        "attributes": {"credit_limit": "15000.00", "payment_terms": "przelew 14 dni"},
    }


def _describe(exc: Exception) -> str:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"{exc.name or exc.filename}:{exc.lineno}: syntax error: {exc.message}"
    if isinstance(exc, jinja2.TemplateNotFound):
        return f"template not found: {exc.name}"
    return f"{type(exc).__name__}: {exc}"


def _unknown_overrides(templates_dir: Path) -> list[str]:
    """Files in the override folder that no mail would ever use (usually a misspelt name)."""
    known = {
        f"{locale}/{template_stem(kind, mode)}.{part}.j2"
        for locale in LOCALES
        for kind in KINDS
        for mode in MODES
        for part in PARTS
    }
    problems = []
    for path in sorted(templates_dir.rglob("*.j2")):
        relative = path.relative_to(templates_dir).as_posix()
        if relative not in known and not path.name.startswith("_"):
            problems.append(f"{templates_dir}: {relative} is not a template name any mail uses (see templates/)")
    return problems


def check_templates(config: Config) -> list[str]:
    """Problems found by rendering every template in every locale and mode with sample data (empty = fine)."""
    templates_dir = config.mail.templates_dir
    problems: list[str] = []
    if templates_dir is not None:
        if not templates_dir.is_dir():
            return [f"[mail] templates_dir: {templates_dir} is not a folder"]
        problems += _unknown_overrides(templates_dir)
    env = make_environment(templates_dir)
    for locale in LOCALES:
        for mode in MODES:
            for kind in KINDS:
                if kind not in _MODAL_KINDS and mode != MODES[0]:
                    continue
                where = f"{locale}/{template_stem(kind, mode)}"
                try:
                    for contact in (False, True):  # a customer's own account, and a contact person's
                        rendered = render(env, kind, mode, locale, sample_context(locale, mode, contact=contact))
                except Exception as exc:  # noqa: BLE001 - every template problem is reported, none raised
                    problems.append(f"{where}: {_describe(exc)}")
                    continue
                secret = "link" if mode == "link" else "temporary_password"
                if kind in _MODAL_KINDS and str(sample_context(locale, mode)[secret]) not in rendered.text:
                    problems.append(f"{where}.txt.j2: does not show the {secret.replace('_', ' ')}")
    return problems
