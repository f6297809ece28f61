"""The rule engine and its rules: tag, active, consultant rules, reasons, explain, errors."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from typing import Any

import pytest

from integrator.config import RulesConfig, config_from_dict
from integrator.errors import ConfigError, IntegratorError
from integrator.records import Record
from integrator.rules import (
    CONTACT_INACTIVE,
    DESCRIPTIONS,
    DUPLICATE_EMAIL,
    DUPLICATE_ERP_ID,
    DUPLICATE_USERNAME,
    INACTIVE,
    INVALID_EMAIL,
    KEEP,
    MISSING_EMAIL,
    MISSING_TAG,
    MISSING_USERNAME,
    NO_ACCESS,
    NO_ELIGIBLE_CONTACT,
    RULE_KINDS,
    UNKNOWN_CUSTOMER,
    ActiveRule,
    EqualsRule,
    InRule,
    MatchesRule,
    RuleEngine,
    RuleError,
    RuleResult,
    TagRule,
    Verdict,
    build_engine,
    describe,
    rule_kind,
)


def record(**fields: Any) -> Record:
    """A tagged, active customer with a valid e-mail, changed by `fields`."""
    values: dict[str, Any] = {
        "erp_id": "K-001",
        "name": "Hurtownia Kowalski",
        "email": "jan.kowalski@firma-handlowa.pl",
        "tags": frozenset({"b2b"}),
    }
    values.update(fields)
    return Record(**values)


def rules_config(toml: str) -> RulesConfig:
    """A `[rules]` section parsed from TOML text, through the real config loader."""
    data = tomllib.loads('[source]\nkind = "csv"\npath = "x.csv"\n' + toml)
    return config_from_dict(data).rules


class Boom:
    """A rule with a bug: it raises on every record."""

    name = "rule:boom"

    def __call__(self, record: Record) -> str | None:
        raise KeyError("price_level")


# -- tag ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("configured", ["b2b", "B2B", " B2B ", "b2B\t", "b 2 b", "B\u00a02B"])
def test_tag_matches_whatever_case_and_spacing_the_config_uses(configured: str) -> None:
    """The configured tag is compared case- and whitespace-insensitively with the normalised record tags."""
    assert TagRule(configured)(record(tags=frozenset({"b2b"}))) is None


def test_tag_that_only_starts_with_the_configured_one_does_not_match() -> None:
    """`b2bx` is a different tag, not a carrier of `b2b`."""
    assert TagRule("b2b")(record(tags=frozenset({"b2bx"}))) == MISSING_TAG


def test_tag_found_among_several_tags() -> None:
    """A customer carrying several tags is kept when one of them is the configured tag."""
    assert TagRule("B2B")(record(tags=frozenset({"vip", "b2b", "hurt"}))) is None


def test_customer_without_tags_is_missing_the_tag() -> None:
    """A customer with no tags at all is left out with `missing_tag`."""
    assert TagRule("b2b")(record(tags=frozenset())) == MISSING_TAG


def test_blank_tag_is_refused() -> None:
    """A tag that normalises to nothing would match no customer, so it is refused up front."""
    with pytest.raises(ValueError):
        TagRule(" \t ")


# -- active ------------------------------------------------------------------------------------------------


def test_inactive_customer_is_left_out() -> None:
    """A customer marked inactive in the ERP gets `inactive`; an active one passes."""
    assert ActiveRule()(record(active=False)) == INACTIVE
    assert ActiveRule()(record(active=True)) is None


def test_require_active_false_keeps_inactive_customers() -> None:
    """With `require_active = false` the engine has no active rule, so inactive customers are kept."""
    engine = build_engine(RulesConfig(require_active=False))
    assert [rule.name for rule in engine.rules] == ["tag", "email"]
    assert engine.evaluate(record(active=False)) is KEEP


# -- consultant rules --------------------------------------------------------------------------------------


def test_equals_rule_is_trimmed_and_case_insensitive() -> None:
    """`equals` matches the field's text ignoring case and surrounding spaces, on both sides."""
    rule = EqualsRule("detal", "price_level", " Detal ")
    assert rule(record(price_level="DETAL")) == "rule:detal"
    assert rule(record(price_level="detaliczna")) is None


def test_in_rule_matches_any_listed_value() -> None:
    """`in` excludes a field equal (case-insensitively, trimmed) to any of the values."""
    rule = InRule("reps", "sales_rep", ["Anna Nowak", " PIOTR ZIELIŃSKI "])
    assert rule(record(sales_rep="piotr zieliński")) == "rule:reps"
    assert rule(record(sales_rep="anna nowak")) == "rule:reps"
    assert rule(record(sales_rep="Anna")) is None


def test_matches_rule_searches_with_the_regular_expression() -> None:
    """`matches` uses `re.search` on the field text, so an unanchored pattern finds a substring."""
    rule = MatchesRule("test-accounts", "symbol", r"^TEST|-TMP$")
    assert rule(record(symbol="TEST01")) == "rule:test-accounts"
    assert rule(record(symbol="K-1-TMP")) == "rule:test-accounts"
    assert rule(record(symbol="K-1")) is None
    assert rule(record(symbol="test01")) is None  # the pattern decides about case, not the rule


@pytest.mark.parametrize(
    "rule",
    [
        EqualsRule("x", "tax_id", ""),
        InRule("x", "tax_id", ["", "none"]),
        MatchesRule("x", "tax_id", ".*"),
    ],
    ids=["equals", "in", "matches"],
)
def test_a_field_that_is_none_never_matches(rule: Any) -> None:
    """A missing value (None) is not the empty string: no consultant rule matches it, even `.*`."""
    assert rule(record(tax_id=None)) is None


def test_consultant_rule_on_tags_tests_each_tag() -> None:
    """On the `tags` field a rule matches when any single tag matches, in the connector's tag form."""
    assert EqualsRule("blocked", "tags", " Zablokowany ")(record(tags=frozenset({"b2b", "zablokowany"})))
    assert InRule("x", "tags", ["hurt", "vip"])(record(tags=frozenset({"b2b"}))) is None
    assert MatchesRule("x", "tags", "^test")(record(tags=frozenset({"b2b", "test-only"}))) == "rule:x"


def test_equals_on_discount_compares_the_number_not_its_scale() -> None:
    """A discount of 12.50 from one database equals the configured "12.5" (and "12.50")."""
    assert EqualsRule("d", "discount", "12.5")(record(discount=Decimal("12.50"))) == "rule:d"
    assert EqualsRule("d", "discount", "12.50")(record(discount=Decimal("12.5"))) == "rule:d"
    assert EqualsRule("d", "discount", "12")(record(discount=Decimal("12.50"))) is None


def test_consultant_rules_from_toml_including_the_in_key() -> None:
    """`[[rules.exclude]]` tables, with the TOML key `in`, build rules named `rule:<name>` in order."""
    config = rules_config(
        """
        [[rules.exclude]]
        name = "detal"
        field = "price_level"
        equals = "detal"
        reason = "retail customers order in the shop"

        [[rules.exclude]]
        name = "reps"
        field = "sales_rep"
        in = ["Anna Nowak"]

        [[rules.exclude]]
        name = "tmp"
        field = "symbol"
        matches = "TMP$"
        """
    )
    engine = build_engine(config)
    assert [rule.name for rule in engine.rules] == ["tag", "active", "email", "rule:detal", "rule:reps", "rule:tmp"]
    assert engine.evaluate(record(sales_rep="ANNA NOWAK")) == Verdict(False, ("rule:reps",))


def test_unknown_rule_kind_lists_the_valid_kinds() -> None:
    """Asking the registry for a kind it does not have is a config error naming every valid kind."""
    with pytest.raises(ConfigError) as raised:
        rule_kind("startswith")
    assert "'startswith'" in str(raised.value)
    for kind in ("equals", "in", "matches"):
        assert kind in str(raised.value)
    assert set(RULE_KINDS) == {"equals", "in", "matches"}


def test_two_consultant_rules_with_one_name_are_refused() -> None:
    """Two rules named alike would report one `rule:<name>` for two reasons, so the engine refuses them."""
    config = rules_config(
        """
        [[rules.exclude]]
        name = "x"
        field = "symbol"
        equals = "A"
        [[rules.exclude]]
        name = "x"
        field = "symbol"
        equals = "B"
        """
    )
    with pytest.raises(ConfigError, match="'x' is used twice"):
        build_engine(config)


# -- engine ------------------------------------------------------------------------------------------------


def test_eligible_record_gets_the_shared_keep_verdict() -> None:
    """A record passing every rule gets the one shared `KEEP` object: nothing is allocated per row."""
    assert build_engine(RulesConfig()).evaluate(record()) is KEEP


def test_every_reason_is_collected_in_rule_order() -> None:
    """Every failing rule contributes its reason, in the order the rules were built, none hidden."""
    config = rules_config(
        """
        [[rules.exclude]]
        name = "tmp"
        field = "symbol"
        matches = "TMP"
        """
    )
    verdict = build_engine(config).evaluate(record(tags=frozenset({"vip"}), active=False, email="nope", symbol="K-TMP"))
    assert verdict == Verdict(False, (MISSING_TAG, INACTIVE, INVALID_EMAIL, "rule:tmp"))


def test_single_reason_verdicts_are_reused() -> None:
    """Rejections with one reason (most of them: untagged customers) share one verdict object per reason."""
    engine = build_engine(RulesConfig())
    first = engine.evaluate(record(erp_id="1", tags=frozenset()))
    second = engine.evaluate(record(erp_id="2", tags=frozenset({"vip"})))
    assert first is second
    assert first == Verdict(False, (MISSING_TAG,))


def test_explain_gives_every_rule_verdict_in_words() -> None:
    """`explain` lists each rule, whether it passed, and the reason code with its description."""
    config = rules_config(
        """
        [rules]
        tag = " B2B "
        [[rules.exclude]]
        name = "detal"
        field = "price_level"
        equals = "detal"
        reason = "retail customers order in the shop"
        """
    )
    results = build_engine(config).explain(record(tags=frozenset(), email="  ", price_level="Detal"))
    assert results == [
        RuleResult("tag", False, MISSING_TAG, "does not carry the tag B2B"),
        RuleResult("active", True),
        RuleResult("email", False, MISSING_EMAIL, "has no e-mail address"),
        RuleResult("rule:detal", False, "rule:detal", "retail customers order in the shop"),
    ]


def test_explain_describes_a_reason_from_a_rule_without_describe() -> None:
    """A plain callable rule (no `describe` method) still gets the shared description of its code."""

    class NoMail:
        name = "no-mail"

        def __call__(self, record: Record) -> str | None:
            return MISSING_EMAIL

    [result] = RuleEngine([NoMail()]).explain(record())
    assert result == RuleResult("no-mail", False, MISSING_EMAIL, DESCRIPTIONS[MISSING_EMAIL])


def test_a_raising_rule_becomes_rule_error_naming_rule_and_customer() -> None:
    """A bug in a rule surfaces as `RuleError` with the rule, the erp_id and the original error, never hidden."""
    engine = RuleEngine([TagRule("b2b"), Boom()])
    with pytest.raises(RuleError) as raised:
        engine.evaluate(record(erp_id="K-042"))
    error = raised.value
    assert isinstance(error, IntegratorError)
    assert (error.rule, error.erp_id) == ("rule:boom", "K-042")
    assert isinstance(error.original, KeyError)
    assert error.__cause__ is error.original
    assert "rule:boom" in str(error) and "K-042" in str(error) and "KeyError" in str(error)
    with pytest.raises(RuleError):
        engine.explain(record(erp_id="K-042"))


def test_engine_accepts_any_sequence_of_rules() -> None:
    """An engine without rules keeps everything; rules are plain callables with a name."""
    assert RuleEngine([]).evaluate(record(tags=frozenset(), email=None)) is KEEP


# -- reasons -----------------------------------------------------------------------------------------------


def test_every_reason_code_has_a_description() -> None:
    """Reports can describe every built-in code, including the ones the sync decides."""
    codes = {MISSING_TAG, INACTIVE, MISSING_EMAIL, INVALID_EMAIL, DUPLICATE_EMAIL, DUPLICATE_ERP_ID, UNKNOWN_CUSTOMER,
             CONTACT_INACTIVE, NO_ACCESS, MISSING_USERNAME, DUPLICATE_USERNAME, NO_ELIGIBLE_CONTACT}  # fmt: skip
    assert set(DESCRIPTIONS) == codes
    assert all(describe(code) and "{" not in describe(code) for code in codes)


def test_describe_fills_in_the_tag_and_consultant_reasons() -> None:
    """The tag is named in `missing_tag`; `rule:<name>` reads the rule's stated reason, or names the rule."""
    assert describe(MISSING_TAG, tag="hurt") == "does not carry the tag hurt"
    assert describe("rule:detal", stated={"detal": "retail customers"}) == "retail customers"
    assert describe("rule:detal") == "excluded by the rule detal"
    assert describe("not_in_source") == "not_in_source"
