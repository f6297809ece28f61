"""The e-mail rule, and proof that its regex fast path never accepts what email-validator rejects."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, find, given, settings
from hypothesis import strategies as st

from integrator.records import Record
from integrator.rules import INVALID_EMAIL, MISSING_EMAIL, EmailRule, fast_accepts, is_valid_email

TYPICAL = "jan.kowalski123@firma-handlowa.pl"


def with_email(email: str | None) -> Record:
    """A customer whose only interesting field is its e-mail."""
    return Record(erp_id="K-001", name="Hurtownia", email=email, tags=frozenset({"b2b"}))


RULES = [EmailRule(), EmailRule(fast_path=False)]
RULE_IDS = ["fast-path", "validator-only"]


# -- the rule ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
@pytest.mark.parametrize("email", [None, "", "   ", "\t\n"])
def test_missing_or_blank_email_is_missing(rule: EmailRule, email: str | None) -> None:
    """No address, or only whitespace, is `missing_email` rather than invalid."""
    assert rule(with_email(email)) == MISSING_EMAIL


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
@pytest.mark.parametrize(
    "email", ["jan.kowalski", "jan@@firma.pl", "jan@firma", "jan kowalski@firma.pl", "jan@firma..pl"]
)
def test_invalid_email_is_invalid(rule: EmailRule, email: str) -> None:
    """An address email-validator rejects gives `invalid_email`, with or without the fast path."""
    assert rule(with_email(email)) == INVALID_EMAIL


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
@pytest.mark.parametrize(
    "email",
    [
        TYPICAL,
        "  Jan.Kowalski@FIRMA-Handlowa.PL ",  # the login is trimmed and lower-cased first
        "biuro+zamowienia@hurt.com.pl",
        "żaneta.wiśniewska@firma.pl",  # Unicode local part (SMTPUTF8)
        "jan@żółw.pl",  # internationalised domain
        "jan@xn--w-uga1v8h.pl",  # the same domain in Punycode
    ],
)
def test_valid_email_passes(rule: EmailRule, email: str) -> None:
    """Valid addresses pass, including upper-case and Unicode ones, with or without the fast path."""
    assert rule(with_email(email)) is None


def test_typical_address_takes_the_fast_path() -> None:
    """The everyday ERP address shape is accepted by the regex alone, which is the point of having one."""
    assert fast_accepts(TYPICAL)
    assert fast_accepts("o'brien+faktury_2024@sklep.hurt.co.uk")


# -- the fast path agrees with email-validator -------------------------------------------------------------

LONGEST_LOCAL = "a" * 64
DOMAIN_189 = ".".join(["b" * 63, "c" * 63, "d" * 59, "pl"])  # 63+1+63+1+59+1+2 = 190 characters
assert len(LONGEST_LOCAL + "@" + DOMAIN_189) == 255

TRICKY: list[tuple[str, bool]] = [
    # (address, does email-validator accept it?)
    ("jan..kowalski@firma.pl", False),  # double dot
    (".jan@firma.pl", False),  # leading dot
    ("jan.@firma.pl", False),  # trailing dot before @
    ("jan@firma..pl", False),  # double dot in the domain
    ("jan@.firma.pl", False),
    ("jan@firma.pl.", False),  # trailing dot
    ("jan@firma-.pl", False),  # label ending with a hyphen
    ("jan@-firma.pl", False),  # label starting with a hyphen
    ("jan@ab--cd.pl", False),  # "--" in 3rd/4th position: reserved (R-LDH), not Punycode
    ("jan@xn--w-uga1v8h.pl", True),  # real Punycode: the validator decides
    ("jan@xn--zz.pl", False),  # fake Punycode
    (LONGEST_LOCAL + "@firma.pl", True),  # 64-character local part: the RFC limit
    ("a" + LONGEST_LOCAL + "@firma.pl", True),  # 65: over the RFC limit, accepted by the validator (non-strict)
    ("jan@" + "b" * 63 + ".pl", True),  # 63-character label: the limit
    ("jan@" + "b" * 64 + ".pl", False),  # 64-character label
    (LONGEST_LOCAL + "@" + DOMAIN_189[1:], True),  # 254 characters in all: the limit
    (LONGEST_LOCAL + "@" + DOMAIN_189, False),  # 255 characters
    ("jan@firma.123", False),  # numeric TLD
    ("jan@firma.p1", False),  # TLD ending with a digit
    ("jan@firma.1p", True),  # odd but valid: the fast path leaves it to the validator
    ("jan@firma.p", True),  # one-letter TLD: syntactically valid
    ("jan kowalski@firma.pl", False),  # space
    ("jan@firma .pl", False),
    (" jan@firma.pl", False),  # the rule trims before, the validator does not
    ("jan,kowalski@firma.pl", False),  # comma
    ("jan@firma,pl", False),
    ("jan@kowalski@firma.pl", False),  # two @
    ("jan.firma.pl", False),  # no @
    ("@firma.pl", False),
    ("jan@", False),
    ("jan@żółw.pl", True),  # Unicode domain
    ("jan@ＦＩＲＭＡ.pl", True),  # full-width letters, normalised by the validator
    ("ján@firma.pl", True),  # Unicode local part
    ("name@localhost", False),  # special-use names
    ("jan@firma", False),  # no dot in the domain
    ("jan@firma.test", False),
    ("jan@firma.local", False),
    ("jan@firma.localhost", False),
    ("jan@x.onion", False),
    ("jan@x.invalid", False),
    ("jan@10.in-addr.arpa", False),
    ("jan@test.pl", True),  # only the top-level name is reserved
    ('"jan kowalski"@firma.pl', False),  # quoted local part: not allowed
    ('"jan"@firma.pl', False),
    ("jan@[127.0.0.1]", False),  # domain literal: not allowed
    ("Jan <jan@firma.pl>", False),  # display name: not allowed
    ("jan@firma.pl\n", False),  # a trailing newline must not slip through `$`
    ("jan\n@firma.pl", False),
    ("jan@firma.pl\u200b", False),  # zero-width space
    ("JAN@FIRMA.PL", True),  # upper case: valid, normalised by the rule before it gets here
    ("!#$%&'*+/=?^_`{|}~-@firma.pl", True),  # every atext symbol
    ("jan(comment)@firma.pl", False),
    ("jan\\@firma.pl", False),
    ("", False),
]


@pytest.mark.parametrize(("address", "valid"), TRICKY, ids=[repr(a)[:40] for a, _ in TRICKY])
def test_tricky_addresses(address: str, valid: bool) -> None:
    """email-validator judges each tricky address as listed, and the fast path accepts none it rejects."""
    assert is_valid_email(address) is valid
    if not valid:
        assert not fast_accepts(address)


ATEXT = "abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~-"
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
# Characters just outside the regex's alphabet or shape, each a way for a sloppy regex to go wrong.
NEAR_MISS = '-.@_ \t\n",;:()<>[]\\ABZ\u00e9\u017c\u0301\u200b\uff21\u3002\uff0e'
AT_EVERY_LIMIT = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".pl"
"""254 characters, a 64-character local part and 63-character labels: every length limit at once."""
TLDS = ["pl", "com", "co", "p", "1p", "p1", "123", "test", "local", "localhost", "onion", "arpa", "invalid"]

# Strategies are built once, at import: built inside the composite they made every example ~4x slower.
ATOM = st.text(st.sampled_from(ATEXT), min_size=1, max_size=8)
WORD = st.text(st.sampled_from(ALNUM), min_size=1, max_size=8)
LABEL = WORD | st.builds(lambda a, b: a + "-" + b, WORD, WORD)
SHORT = st.builds(
    lambda atoms, labels, tld: ".".join(atoms) + "@" + ".".join([*labels, tld]),
    st.lists(ATOM, min_size=1, max_size=3),
    st.lists(LABEL, max_size=3),
    st.sampled_from(TLDS) | st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz"), min_size=1, max_size=6),
)
"""Everyday shapes, valid for the fast path unless the top-level domain says otherwise."""


def _long(local: int, labels: list[int], total: int | None) -> str:
    """`local` and label lengths given; the top-level domain fills the address up to `total` characters."""
    head = "a" * local + "@" + "".join("b" * n + "." for n in labels)
    return head + "c" * (max(2, total - len(head)) if total else 2)


LONG = st.builds(
    _long,
    st.sampled_from([1, 63, 64, 65]),
    st.lists(st.sampled_from([1, 62, 63, 64]), min_size=1, max_size=3),
    st.sampled_from([None, 253, 254, 255]),
)
"""Addresses right at the total (254), local part (64) and label (63) length limits."""


@st.composite
def addresses(draw: st.DrawFn) -> str:
    """A well-shaped address, half the time with one near-miss character put in at an edge or anywhere."""
    address = draw(LONG if draw(st.integers(0, 3)) == 0 else SHORT)
    if draw(st.booleans()):
        edges = [0, len(address)] + [i + d for i, c in enumerate(address) if c in "@.-" for d in (0, 1)]
        at = draw(st.sampled_from(edges) | st.integers(0, len(address)))
        replace = draw(st.booleans())
        address = address[:at] + draw(st.sampled_from(NEAR_MISS) | st.sampled_from("-.@")) + address[at + replace :]
    return address


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(addresses(), addresses(), addresses(), st.text(st.sampled_from(ATEXT + NEAR_MISS), max_size=80)))
@example(AT_EVERY_LIMIT)
@example("jan@ab--cd.pl")
def test_fast_path_never_accepts_what_email_validator_rejects(address: str) -> None:
    """For any generated address, the fast path accepting it implies email-validator accepts it."""
    if fast_accepts(address):
        assert is_valid_email(address), address


SEEDS = [
    TYPICAL,
    "o'brien+x_y@a-b.c-d.co.uk",
    "a@b.pl",
    "!#$%&'*+/=?^_`{|}~-@x1.pl",
    "a.b@9.co",
    "a@ab-c.pl",  # one more hyphen makes the reserved "ab--c"
    "a@b.tests",  # one deletion makes the special-use ".test"
    "a@" + "b" * 63 + ".pl",  # a label at its 63-character limit
    AT_EVERY_LIMIT,
]
EDIT_CHARS = NEAR_MISS + "a0"


def one_edit_away(address: str) -> set[str]:
    """Every string one deletion, insertion or replacement (of an edit character) away from `address`."""
    edits = {address[:i] + address[i + 1 :] for i in range(len(address))}
    for i in range(len(address) + 1):
        for char in EDIT_CHARS:
            edits.add(address[:i] + char + address[i:])
            edits.add(address[:i] + char + address[i + 1 :])
    return edits


@pytest.mark.parametrize("seed", SEEDS, ids=[s[:20] for s in SEEDS])
def test_fast_path_agrees_on_every_one_character_edit(seed: str) -> None:
    """Exhaustively, no single-character edit of a valid address gets past the fast path if the validator rejects it."""
    assert fast_accepts(seed)
    wrong = sorted(a for a in one_edit_away(seed) if fast_accepts(a) and not is_valid_email(a))
    assert wrong == []


def test_generator_reaches_the_fast_path() -> None:
    """The agreement test is not vacuous: its generator produces addresses the fast path accepts, long ones too."""
    found = find(
        addresses(), lambda a: fast_accepts(a) and len(a) >= 240, settings=settings(max_examples=5000, database=None)
    )
    assert is_valid_email(found)
