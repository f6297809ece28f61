"""The password policy (integrator.password_policy) on its own, and `[accounts] min_password_length` as the config
file gives it: lengths counted in code points after NFC, the shipped list of common passwords, no composition
rules, and refusals that name the rule but never the password."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from integrator.config import load_config
from integrator.errors import ConfigError
from integrator.password_policy import MAX_LENGTH, MIN_LENGTH, Rule, check, common_passwords, length

LOGIN = "jan@example.pl"


def _rule(password: str, **options: object) -> Rule | None:
    refused = check(password, login=LOGIN, **options)  # type: ignore[arg-type]
    return None if refused is None else refused.rule


def test_the_limits_are_nist_s() -> None:
    """At least 8 and at most 128 (NIST asks that 64 or more be accepted)."""
    assert (MIN_LENGTH, MAX_LENGTH) == (8, 128)


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("kot-Łódź", None),  # 8: the floor
        ("kot-Łód", Rule.TOO_SHORT),  # 7
        ("", Rule.TOO_SHORT),
        ("z" * 64, None),
        ("z" * 128, None),
        ("z" * 129, Rule.TOO_LONG),
        ("z" * 100_000, Rule.TOO_LONG),
        ("bardzo długie hasło bez cyfr", None),  # no composition rules: no digit, capital or symbol is asked for
        ("58203917465", None),  # digits only, not on the list
    ],
)
def test_lengths_are_counted_and_no_composition_is_asked(password: str, rule: Rule | None) -> None:
    """8 characters pass and 7 do not; 64 and 128 pass, 129 is refused (not cut); any kind of character counts."""
    assert _rule(password) is rule


def test_a_password_longer_than_the_maximum_is_refused_not_cut() -> None:
    """A 129-character password whose first 128 would pass is refused as a whole, and the reason says so."""
    refused = check("Ab3$" * 32 + "x", login=LOGIN)
    assert refused is not None and refused.rule is Rule.TOO_LONG
    assert f"at most {MAX_LENGTH}" in refused.reason and "not cut" in refused.reason


def test_length_is_counted_in_code_points_after_nfc() -> None:
    """A decomposed 'é' (e + U+0301, as some keyboards send it) is one character, as its composed form is."""
    decomposed = "e\u0301" * 8  # 16 code points as typed, 8 after NFC
    assert (len(decomposed), length(decomposed)) == (16, 8)
    assert _rule(decomposed) is None
    assert _rule("e\u0301" * 7) is Rule.TOO_SHORT  # 14 code points as typed, but 7 characters
    assert _rule("e\u0301" * 128) is None  # 256 code points as typed, 128 after NFC
    assert _rule("e\u0301" * 129) is Rule.TOO_LONG
    assert _rule("🔑" * 8) is None  # one code point each, whatever UTF-16 or UTF-8 make of it


@pytest.mark.parametrize("password", ["password1", "PASSWORD1", "PassWord1", "  qwertyuiop ", "Iloveyou"])
def test_common_passwords_are_refused_in_any_letter_case(password: str) -> None:
    """A password on the shipped list is refused whatever its letter case or surrounding blanks."""
    refused = check(password, login=LOGIN)
    assert refused is not None and refused.rule is Rule.COMMON
    assert password.strip().lower() not in refused.reason.lower()


def test_the_shipped_list_is_there_and_holds_only_what_can_be_typed_long_enough() -> None:
    """The packaged list loads (thousands of entries), all lowercase and at least 8 characters long."""
    listed = common_passwords()
    assert len(listed) > 8000
    assert {"password", "iloveyou", "1q2w3e4r5t"} <= listed
    assert all(entry == entry.lower() and len(entry) >= MIN_LENGTH for entry in listed)


def test_login_and_old_password_are_refused_by_their_rules() -> None:
    """The login itself (any case, NFC) and the unchanged password are refused with their own rules."""
    assert _rule(" JAN@example.PL ") is Rule.SAME_AS_LOGIN
    assert _rule("Moje-Hasło-2026", old="Moje-Hasło-2026") is Rule.SAME_AS_OLD
    assert _rule("Moje-Hasło-2027", old="Moje-Hasło-2026") is None


def test_a_configured_minimum_raises_the_floor_but_never_lowers_it() -> None:
    """min_length 12 refuses 11 characters and passes 12; a min_length below 8 still asks for 8."""
    assert _rule("kot-Łódź-123", min_length=12) is None
    refused = check("kot-Łódź-12", login=LOGIN, min_length=12)
    assert refused is not None and (refused.rule, refused.reason) == (
        Rule.TOO_SHORT,
        "the password must have at least 12 characters",
    )
    assert _rule("kot-Łód", min_length=4) is Rule.TOO_SHORT


def _config(tmp_path: Path, accounts: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[source]\nkind = "csv"\npath = "erp.csv"\n\n[accounts]\n{accounts}\n', encoding="utf-8")
    return path


def test_min_password_length_is_read_from_the_config(tmp_path: Path) -> None:
    """[accounts] min_password_length = 12 is taken; left out, it is 8."""
    assert load_config(_config(tmp_path, "min_password_length = 12")).accounts.min_password_length == 12
    assert load_config(_config(tmp_path, "")).accounts.min_password_length == 8


@pytest.mark.parametrize("value", ["7", "129"])
def test_min_password_length_out_of_bounds_is_a_config_error_naming_the_key(tmp_path: Path, value: str) -> None:
    """Below NIST's 8 or above the 128 accepted, the key is refused with the file and its name."""
    path = _config(tmp_path, f"min_password_length = {value}")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "config.toml" in message and "accounts.min_password_length" in message


def test_a_password_is_one_password_in_either_unicode_form() -> None:
    """Hashed in NFC: the composed and the decomposed spelling of the same password both verify, a different
    password does not, and a hash made of the decomposed form as typed (before normalising) still verifies."""
    import argon2

    from integrator.mail.secrets import hash_password, verify_password

    composed = unicodedata.normalize("NFC", "Zażółć gęślą jaźń 7")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    stored = hash_password(decomposed)
    assert verify_password(stored, composed) and verify_password(stored, decomposed)
    assert not verify_password(stored, composed.replace("7", "8"))
    assert argon2.PasswordHasher().verify(stored, composed)  # what is stored is the NFC form's hash
    older = argon2.PasswordHasher().hash(decomposed)
    assert verify_password(older, decomposed) and not verify_password(older, composed.replace("7", "8"))
