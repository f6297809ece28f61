"""Secrets: strong, URL-safe link tokens, readable strong temporary passwords, and only hashes stored."""

from __future__ import annotations

import math

from integrator.mail import secrets


def test_link_token_has_at_least_128_random_bits_and_is_url_safe() -> None:
    """The random part of a token is 256 bits of URL-safe base64; two tokens never repeat."""
    tokens = {secrets.mint_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert len(token) * 6 >= 128
        assert all(c.isalnum() or c in "-_" for c in token)


def test_temporary_password_is_readable_and_strong() -> None:
    """Four dash-separated groups from an alphabet without look-alikes, mixed case and a digit, > 100 bits."""
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    for _ in range(50):
        password = secrets.mint_temporary_password()
        groups = password.split("-")
        assert [len(g) for g in groups] == [5, 5, 5, 5]
        symbols = "".join(groups)
        assert set(symbols) <= set(alphabet) and not set(symbols) & set("0O1lI")
        assert any(c.isupper() for c in symbols) and any(c.islower() for c in symbols)
        assert any(c.isdigit() for c in symbols)
    assert 20 * math.log2(len(alphabet)) > 100


def test_passwords_are_hashed_with_argon2id() -> None:
    """Password hashes are argon2id and verify only the right password; junk hashes never verify."""
    stored = secrets.hash_password("Zażółć-gęślą-jaźń-1")
    assert stored.startswith("$argon2id$")
    assert secrets.verify_password(stored, "Zażółć-gęślą-jaźń-1")
    assert not secrets.verify_password(stored, "zazolc")
    assert not secrets.verify_password(None, "x") and not secrets.verify_password("not-a-hash", "x")


def test_tokens_are_parsed_strictly_and_compared_by_hash() -> None:
    """A token is `<id>.<random>`; anything else is rejected before touching the database."""
    random_part = secrets.mint_token()
    assert secrets.parse_token(f"17.{random_part}") == (17, random_part)
    for junk in ("", "17", f"x.{random_part}", "17.short", f".{random_part}"):
        assert secrets.parse_token(junk) is None
    stored = secrets.hash_token(random_part)
    assert random_part not in stored and len(stored) == 64
    other = random_part[:-1] + ("B" if random_part.endswith("A") else "A")  # one character off, never the same
    assert secrets.token_matches(stored, random_part) and not secrets.token_matches(stored, other)


def test_issued_secret_never_shows_its_plaintext_in_repr() -> None:
    """An IssuedSecret in a traceback or log line does not reveal the secret."""
    from datetime import datetime

    issued = secrets.IssuedSecret(
        id=1, kind="temporary_password", plaintext="Sekret-12345", expires_at=datetime(2030, 1, 1)
    )
    assert "Sekret" not in repr(issued) and "Sekret" not in str(issued)
