"""A sample ERP and a config that syncs it: the product end to end on the embedded default, no server needed.

The customer table is deliberately messy in the ways real ERP data is (the tag typed in any case and spacing,
a look-alike tag, shared and broken e-mails, inactive customers), so the first sync shows every rule at work.
Each customer has contact persons (its buyers, in a `contacts` table) and the config reads them, so accounts are
per buyer: the first buyer of a customer uses the customer's own e-mail (the mess above carries over to the
logins), some customers have two or three buyers, and single buyers are planted with website access switched
off, marked inactive, or buying for two customers on one e-mail. Customers carry a credit limit and payment
terms, passed through to their accounts as attributes. The same seed always writes the same data, so a demo, a
test and a README can quote the same numbers.
"""

from __future__ import annotations

import json
import random
import sqlite3
import unicodedata
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

__all__ = [
    "DEMO_ATTRIBUTES",
    "DEMO_CONTACTS_QUERY",
    "DEMO_QUERY",
    "MIN_CUSTOMERS",
    "DemoPaths",
    "clear_demo_state",
    "nip_is_valid",
    "odbc_connection_string",
    "write_demo",
]

DEMO_QUERY = (
    "SELECT erp_id, name, email, tags, symbol, tax_id, phone, price_level, discount, sales_rep, "
    "sales_rep_email, active, locale, printf('%.2f', credit_limit) AS credit_limit, payment_terms FROM customers"
)
"""The customer query; SQLite keeps a DECIMAL as a float or an integer, so the query writes the credit limit
with its two decimals, as an ERP's DECIMAL(12, 2) column gives it."""
DEMO_CONTACTS_QUERY = "SELECT erp_id, contact_id, email, name, phone, active, access FROM contacts"
DEMO_ATTRIBUTES = ("credit_limit", "payment_terms")
MIN_CUSTOMERS = 40
"""Below this the planted mix (every kind of messy row at least once) does not fit."""

_FIRST_ERP_ID = 1001
_NIP_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7)

# (city, telephone area code)
_CITIES = (
    ("Łódź", 42), ("Kraków", 12), ("Gdańsk", 58), ("Poznań", 61), ("Wrocław", 71), ("Białystok", 85),
    ("Częstochowa", 34), ("Zielona Góra", 68), ("Bielsko-Biała", 33), ("Toruń", 56), ("Rzeszów", 17),
    ("Szczecin", 91), ("Kielce", 41), ("Opole", 77), ("Gorzów Wielkopolski", 95), ("Płock", 24),
    ("Świnoujście", 91), ("Łomża", 86), ("Sosnowiec", 32), ("Zakopane", 18), ("Olsztyn", 89), ("Tczew", 58),
    ("Włocławek", 54), ("Nowy Sącz", 18),
)  # fmt: skip
_MALE = (
    "Józef", "Łukasz", "Zbigniew", "Jędrzej", "Paweł", "Krzysztof", "Wojciech", "Jarosław", "Mirosław",
    "Tomasz", "Grzegorz", "Bartłomiej", "Stanisław", "Przemysław",
)  # fmt: skip
_FEMALE = (
    "Małgorzata", "Grażyna", "Agnieszka", "Żaneta", "Bożena", "Elżbieta", "Urszula", "Kinga", "Jadwiga",
    "Danuta", "Halina", "Beata", "Łucja",
)  # fmt: skip
_SURNAMES = (
    "Wąsik", "Wiśniewski", "Kowalczyk", "Żak", "Dąbrowski", "Łuczak", "Szymański", "Woźniak", "Kamiński",
    "Zieliński", "Górski", "Jabłoński", "Król", "Pietrzak", "Wróbel", "Sikora", "Grzegorczyk", "Świątek",
    "Ślusarczyk", "Bąk", "Kołodziej", "Gołębiowski", "Sęk", "Pająk", "Żurawski", "Mączka",
)  # fmt: skip
_WORDS = (
    "Żółw", "Bławatek", "Jodełka", "Pszczółka", "Złoty Kłos", "Śnieżka", "Dębowy Dwór", "Mazurek", "Kaszub",
    "Sójka", "Wrzos", "Łania", "Źródełko", "Gęś", "Różany Sad", "Słonecznik", "Bursztyn", "Młynek",
    "Orzeł Biały", "Kłosek", "Żuraw", "Miodek",
)  # fmt: skip
_TRADES = ("Spożywcza", "Owocowo-Warzywna", "Chemiczna", "Mięsna", "Nabiałowa", "Przemysłowa", "Napojów")
_FOREIGN = (
    ("Baltic Foods UAB", "LT", "+370 5 212 3456"),
    ("Nordhandel GmbH", "DE", "+49 30 2345 6789"),
    ("Praha Trade s.r.o.", "CZ", "+420 222 123 456"),
    ("Riga Wholesale SIA", "LV", "+371 6712 3456"),
    ("Hansa Logistics GmbH", "DE", "+49 40 3456 7890"),
    ("Danube Foods Kft.", "HU", "+36 1 234 5678"),
    ("Tatra Distribution s.r.o.", "SK", "+421 2 5443 2100"),
    ("Vilnius Market UAB", "LT", "+370 5 261 0000"),
)
_PRICE_LEVELS = ("Hurtowa", "Hurtowa", "Hurtowa", "Detaliczna", "Detaliczna", "Specjalna", "Dystrybutor")
_DISCOUNTS = ("0", "0", "2.5", "3", "5", "5", "7.5", "10", "12", "15")
_SALES_REPS = (
    ("Anna Kępińska", "anna.kepinska@hurtownia-demo.example.com"),
    ("Marek Żeleński", "marek.zelenski@hurtownia-demo.example.com"),
    ("Joanna Ćwiklińska", "joanna.cwiklinska@hurtownia-demo.example.com"),
    ("Piotr Nowak", "piotr.nowak@hurtownia-demo.example.com"),
    ("Ewa Łapińska", "ewa.lapinska@hurtownia-demo.example.com"),
)
_OTHER_TAGS = ("vip", "hurt", "detal", "sieć", "eksport", "płatność 14 dni")
_PAYMENT_TERMS = (
    "przelew 14 dni", "przelew 14 dni", "przelew 30 dni", "przelew 7 dni", "gotówka przy odbiorze",
    "przelew 21 dni, 2% skonta przy płatności w 7 dni",
)  # fmt: skip
_CREDIT_LIMITS = ("5000", "10000", "15000", "20000", "25000", "50000", "7500.50", "120000")
TAG_VARIANTS = ("b2b", " B2B", "B2b ", "b2B", " b2b ", "B2B")
"""How people type the tag into the ERP; every one of them must count as `b2b`."""
INVALID_EMAILS: tuple[str | None, ...] = (
    "brak",
    "jan@",
    "",
    None,
    "tel. 601 234 567",
    "biuro@@zolw.example.com",
)
"""E-mail fields as customer cards hold them: a placeholder word, half an address, empty, NULL, a phone."""
# Customer mail domains are subdomains of example.com/.net/.org (RFC 2606): a demo switched to SMTP by mistake
# can never write to a real company.
_MAIL_PARENTS = ("example.com", "example.net", "example.org")


@dataclass(frozen=True)
class DemoPaths:
    """What `write_demo` wrote, and how many customers of each planted kind are in it."""

    directory: Path
    database: Path
    config: Path
    customers: int
    mix: tuple[tuple[str, int], ...]
    """(kind, count) pairs, e.g. ("tagged b2b", 170): printed by `integrator demo`."""
    examples: tuple[tuple[int, str], ...] = ()
    """(erp_id, why it is interesting): one customer per planted kind, to try `integrator explain` on."""
    contacts: int = 0
    """How many contact persons (buyers) the `contacts` table holds."""


def nip_is_valid(nip: str) -> bool:
    """A Polish NIP: 10 digits (dashes and spaces allowed) whose weighted checksum matches the last one."""
    plain = nip.replace("-", "").replace(" ", "")
    if len(plain) != 10 or not plain.isascii() or not plain.isdigit():
        return False
    digits = [int(c) for c in plain]
    return sum(w * d for w, d in zip(_NIP_WEIGHTS, digits[:9], strict=True)) % 11 == digits[9]


def odbc_connection_string(database: Path) -> str:
    """A SQLite3 ODBC connection string for `database`: the plain absolute path, or a URI when it holds `;`.

    The SQLite ODBC driver ends the value at the first `;` and ignores ODBC's `{...}` quoting, so such a path
    goes as a percent-encoded `file:` URI, which the driver hands to SQLite as is.
    """
    path = str(database.resolve())
    if ";" in path:
        return f"Driver=SQLite3;Database=file:{urllib.parse.quote(path)}"
    return f"Driver=SQLite3;Database={path}"


def _ascii_slug(text: str) -> str:
    # NFKD drops most diacritics; Ł/ł has no decomposition and needs its own mapping.
    text = text.replace("Ł", "L").replace("ł", "l")
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "-".join("".join(c if c.isalnum() else " " for c in plain.lower()).split())


def _female(surname: str) -> str:
    for male, female in (("ski", "ska"), ("cki", "cka"), ("dzki", "dzka")):
        if surname.endswith(male):
            return surname[: -len(male)] + female
    return surname


def _nip(rng: random.Random) -> str:
    while True:
        digits = [rng.randint(1, 9)] + [rng.randint(0, 9) for _ in range(8)]
        check = sum(w * d for w, d in zip(_NIP_WEIGHTS, digits, strict=True)) % 11
        if check != 10:  # a checksum of 10 is never issued
            return "".join(map(str, digits + [check]))


class _Generator:
    """Builds the rows; one instance per `write_demo`, all randomness from one seeded `Random`."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.emails: set[str] = set()
        self.names: set[str] = set()

    def person(self) -> tuple[str, str]:
        if self.rng.random() < 0.5:
            return self.rng.choice(_MALE), self.rng.choice(_SURNAMES)
        return self.rng.choice(_FEMALE), _female(self.rng.choice(_SURNAMES))

    def polish_name(self, first: str, last: str) -> tuple[str, int, str]:
        """(company name, index into _CITIES, mail slug) for a business whose owner is `first last`."""
        rng = self.rng
        city_index = rng.randrange(len(_CITIES))
        city = _CITIES[city_index][0]
        word = rng.choice(_WORDS)
        form = rng.randrange(8)
        if form == 0:
            name, slug = f"Hurtownia {rng.choice(_TRADES)} {city} sp. z o.o.", f"hurtownia-{city}"
        elif form == 1:
            name, slug = f"P.H.U. {word} {first} {last}", f"{word}-{last}"
        elif form == 2:
            name, slug = f"{last} i Syn s.c.", f"{last}-{city}"
        elif form == 3:
            name, slug = f"F.H. „{word}” {first} {last}", f"fh-{word}"
        elif form == 4:
            name, slug = f"Sklep Spożywczy „{word}” {first} {last}", f"sklep-{word}-{city}"
        elif form == 5:
            name, slug = f"Przedsiębiorstwo Handlowe {word} sp.j.", f"ph-{word}"
        elif form == 6:
            name, slug = f"{word} S.A.", word
        else:
            name, slug = f"Delikatesy {word} {city}", f"delikatesy-{city}"
        return name, city_index, _ascii_slug(slug)

    def unique_name(self, name: str, qualifier: str) -> str:
        if name in self.names:
            name = f"{name} ({qualifier})"
        serial = 2
        base = name
        while name in self.names:
            name, serial = f"{base} {serial}", serial + 1
        self.names.add(name)
        return name

    def email(self, slug: str, first: str | None = None, last: str | None = None) -> str:
        rng = self.rng
        if first and last and rng.random() < 0.4:
            local = _ascii_slug(f"{first[0]}.{last}").replace("-", ".")
        else:
            local = rng.choice(("biuro", "zamowienia", "sklep", "kontakt", "hurt", "info"))
        domain = f"{slug}.{rng.choice(_MAIL_PARENTS)}"
        address, serial = f"{local}@{domain}", 2
        while address in self.emails:
            address, serial = f"{local}{serial}@{domain}", serial + 1
        self.emails.add(address)
        return address

    def phone(self, city_index: int) -> str | None:
        """A phone number typed in one of the ways ERPs hold them, or none."""
        rng = self.rng
        style = rng.randrange(5)
        area = _CITIES[city_index][1]
        if style == 0:
            return f"+48 {area} {rng.randint(200, 799)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
        if style == 1:
            return f"{rng.choice((5, 6, 7, 8))}{rng.randint(0, 9)}{rng.randint(0, 9)} {rng.randint(100, 999)} {rng.randint(100, 999)}"  # noqa: E501
        if style == 2:
            return f"({area}) {rng.randint(200, 799)}-{rng.randint(10, 99)}-{rng.randint(10, 99)}"
        if style == 3:
            return f"{area}{rng.randint(2000000, 7999999)}"
        return None

    def tags(self, marker: str | None) -> str | None:
        """A raw tags column: `marker` (a spelling of b2b, or a look-alike) among other tags, or none."""
        rng = self.rng
        parts = rng.sample(_OTHER_TAGS, rng.choice((0, 0, 1, 1, 2)))
        if marker is not None:
            parts.insert(rng.randrange(len(parts) + 1), marker)
        if not parts:
            return rng.choice(("", None))
        return rng.choice((",", ", ")).join(parts)


def _plan(rng: random.Random, n: int) -> dict[int, str]:
    """Which customer indexes carry which planted oddity; the rest are plain tagged or untagged customers."""
    order = list(range(n))
    rng.shuffle(order)
    counts = {
        "invalid_email": len(INVALID_EMAILS),
        "duplicate_email": 2 * max(2, n // 60),
        "inactive_tagged": max(3, n // 25),
        "inactive_untagged": max(1, n // 80),
        "lookalike_tag": max(2, n // 40),
        "foreign": max(3, n // 30),
        "untagged": max(5, n // 5),
    }
    plan: dict[int, str] = {}
    start = 0
    for kind, count in counts.items():
        for index in order[start : start + count]:
            plan[index] = kind
        start += count
    return plan


def _rows(
    customers: int, seed: int
) -> tuple[list[tuple[object, ...]], dict[str, tuple[int, str]], list[str], list[tuple[str, str]]]:
    """The customer rows; one erp_id per planted kind with what makes it worth an `integrator explain`; each
    customer's kind and the person behind it (its first buyer)."""
    gen = _Generator(seed)
    rng = gen.rng
    plan = _plan(rng, customers)
    invalid = iter(INVALID_EMAILS)
    duplicate_owner: tuple[int, str] | None = None  # the first of a duplicate pair; its partner reuses the address
    examples: dict[str, tuple[int, str]] = {}
    variant = 0
    foreign = 0
    rows: list[tuple[object, ...]] = []
    kinds: list[str] = []
    people: list[tuple[str, str]] = []
    for index in range(customers):
        erp_id = _FIRST_ERP_ID + index
        kind = plan.get(index, "tagged")
        first, last = gen.person()
        kinds.append(kind)
        people.append((first, last))
        if kind == "foreign":
            base, country, phone = _FOREIGN[foreign % len(_FOREIGN)]
            foreign += 1
            name = gen.unique_name(base, country)
            email: str | None = gen.email(_ascii_slug(base.split()[0] + "-" + country))
            tax_id: str | None = country + "".join(str(rng.randint(0, 9)) for _ in range(9))
            price_level, locale = "Eksportowa", "en"
            phone_text: str | None = phone
        else:
            raw_name, city, slug = gen.polish_name(first, last)
            name = gen.unique_name(raw_name, _CITIES[city][0])
            email = gen.email(slug, first, last)
            nip = _nip(rng)
            # ERPs hold NIPs typed either way: plain digits or with dashes.
            tax_id = nip if rng.random() < 0.6 else f"{nip[:3]}-{nip[3:6]}-{nip[6:8]}-{nip[8:]}"
            price_level, locale = rng.choice(_PRICE_LEVELS), "pl"
            phone_text = gen.phone(city)
        if kind == "invalid_email":
            email = next(invalid)
            if email == "brak":
                examples.setdefault(kind, (erp_id, "tagged, but its e-mail is 'brak' (none)"))
        elif kind == "duplicate_email":
            if duplicate_owner is None:
                duplicate_owner = (erp_id, email)
            else:
                # The partner typed it differently: same login once trimmed and lower-cased.
                owner_id, owner_email = duplicate_owner
                email = owner_email if rng.random() < 0.5 else f" {owner_email.upper()} "
                duplicate_owner = None
                examples.setdefault(kind, (erp_id, f"shares its e-mail with {owner_id}, the smaller erp_id"))
        elif kind == "tagged" and rng.random() < 0.05:
            email = f" {email.capitalize()} "  # stray spaces and capitals: still a valid login
        if kind in ("untagged", "inactive_untagged"):
            tags = gen.tags(None)
        elif kind == "lookalike_tag":
            tags = gen.tags(rng.choice(("b2bx", "B2BX", " b2bx")))
        else:
            tags = gen.tags(TAG_VARIANTS[variant % len(TAG_VARIANTS)])
            variant += 1
        rep_name, rep_email = rng.choice(_SALES_REPS) if rng.random() < 0.9 else (None, None)
        symbol = f"{_ascii_slug(name).upper().replace('-', '')[:8]}/{erp_id}"
        active = 0 if kind.startswith("inactive") else 1
        discount = str(Decimal(rng.choice(_DISCOUNTS)).quantize(Decimal("0.01")))
        rows.append((erp_id, symbol, name, email, tags, tax_id, phone_text, price_level, discount,
                     rep_name, rep_email, active, locale))  # fmt: skip
        if kind in _EXAMPLE_TEXT:
            examples.setdefault(kind, (erp_id, _EXAMPLE_TEXT[kind].format(tags=tags or "")))
    return rows, examples, kinds, people


_EXAMPLE_ORDER = (
    "tagged", "buyers", "inactive_buyer", "untagged", "lookalike_tag", "inactive_tagged", "invalid_email",
    "no_eligible_contact", "duplicate_email", "shared_buyer",
)  # fmt: skip
_EXAMPLE_TEXT = {
    "tagged": "tagged {tags!r}: its buyer gets an account",
    "untagged": "no b2b tag (tags {tags!r})",
    "lookalike_tag": "tags {tags!r}: b2bx is not b2b",
    "inactive_tagged": "tagged {tags!r}, but inactive in the ERP",
}


def _attributes(rows: list[tuple[object, ...]], seed: int) -> list[tuple[object, ...]]:
    """Each customer row with its credit limit and payment terms (from a generator of their own, so the rest of
    a row is what the same seed always wrote)."""
    rng = random.Random(f"{seed}:attributes")
    done = []
    for row in rows:
        if row[12] == "en":  # foreign customers pay in advance
            limit, terms = "0", "przedpłata na konto"
        else:
            limit, terms = rng.choice(_CREDIT_LIMITS), rng.choice(_PAYMENT_TERMS)
        done.append((*row, str(Decimal(limit).quantize(Decimal("0.01"))), terms))
    return done


def _domain(email: object) -> str | None:
    """The domain of a usable customer e-mail (None for the planted broken ones)."""
    if not isinstance(email, str) or email.count("@") != 1:
        return None
    domain = email.strip().lower().partition("@")[2]
    return domain if "." in domain else None


def _contacts(
    rows: list[tuple[object, ...]], kinds: list[str], people: list[tuple[str, str]], seed: int
) -> tuple[list[tuple[object, ...]], dict[str, tuple[int, str]]]:
    """The `contacts` rows (erp_id, contact_id, name, email, phone, active, access) and their planted examples.

    Every customer's first buyer is the person behind it, on the customer's own e-mail; about a third of the
    plain tagged customers have one or two buyers more, on addresses of their own. Planted once each: three
    buyers with one switched off, two with one marked inactive, a customer whose every buyer is switched off
    or inactive, and one buyer who buys for two customers on one e-mail."""
    rng = random.Random(f"{seed}:contacts")
    used = {str(row[3]).strip().lower() for row in rows}
    plain = [i for i, kind in enumerate(kinds) if kind == "tagged" and _domain(rows[i][3])]
    three, inactive, switched_off, *shared = rng.sample(plain, 5)
    shared.sort()
    extra = {i: rng.choice((1, 1, 2)) for i in plain if rng.random() < 0.3}
    extra.update({three: 2, inactive: 1, shared[0]: extra.get(shared[0], 1), shared[1]: extra.get(shared[1], 1)})
    extra.pop(switched_off, None)
    examples: dict[str, tuple[int, str]] = {}
    contacts: list[tuple[object, ...]] = []
    shared_buyer: tuple[str, str] | None = None
    for index, row in enumerate(rows):
        erp_id, email, phone = row[0], row[3], row[6]
        first, last = people[index]
        buyers: list[list[object]] = [[erp_id, 0, f"{first} {last}", email, phone, 1, 1]]
        for _ in range(extra.get(index, 0)):
            first, last = _buyer(rng)
            address, serial = f"{_ascii_slug(first)}.{_ascii_slug(last)}@{_domain(email)}", 2
            while address in used:
                address, serial = f"{_ascii_slug(first)}.{_ascii_slug(last)}{serial}@{_domain(email)}", serial + 1
            used.add(address)
            buyers.append([erp_id, 0, f"{first} {last}", address, f"{rng.randint(500, 889)} {rng.randint(100, 999)} "
                           f"{rng.randint(100, 999)}", 1, 1])  # fmt: skip
        if index == three:
            buyers[-1][6] = 0
            examples["buyers"] = (int(erp_id), f"three buyers; {buyers[-1][2]} has website access switched off")
        elif index == inactive:
            buyers[-1][5] = 0
            examples["inactive_buyer"] = (int(erp_id), f"two buyers; {buyers[-1][2]} is marked inactive")
        elif index == switched_off:
            buyers[0][6] = 0
            first, last = _buyer(rng)
            buyers.append([erp_id, 0, f"{first} {last}", f"{_ascii_slug(first)}@{_domain(email)}", None, 0, 1])
            examples["no_eligible_contact"] = (int(erp_id), "tagged, but its buyers are switched off or inactive: "
                                                            "no_eligible_contact")  # fmt: skip
        elif index == shared[0]:
            shared_buyer = (str(buyers[-1][2]), str(buyers[-1][3]))
        elif index == shared[1] and shared_buyer is not None:
            buyers[-1][2:4] = shared_buyer
            owner = rows[shared[0]][0]
            examples["shared_buyer"] = (int(erp_id), f"its buyer {shared_buyer[0]} also buys for {owner}, on the "
                                                     f"same e-mail: the login stays with {owner}")  # fmt: skip
        for buyer in buyers:
            buyer[1] = len(contacts) + 1  # contact ids are the ERP's own: unique across customers
            contacts.append(tuple(buyer))
    return contacts, examples


def _buyer(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.5:
        return rng.choice(_MALE), rng.choice(_SURNAMES)
    return rng.choice(_FEMALE), _female(rng.choice(_SURNAMES))


def _mix(rows: list[tuple[object, ...]], contacts: list[tuple[object, ...]]) -> tuple[tuple[str, int], ...]:
    def has_tag(tags: object, tag: str) -> bool:
        return isinstance(tags, str) and tag in {t.strip().lower() for t in tags.split(",")}

    logins: dict[str, int] = {}
    for row in rows:
        login = row[3].strip().lower() if isinstance(row[3], str) else ""
        if login:
            logins[login] = logins.get(login, 0) + 1
    return (
        ("tagged b2b (any case or spacing)", sum(has_tag(r[4], "b2b") for r in rows)),
        ("without the tag", sum(not has_tag(r[4], "b2b") for r in rows)),
        ("look-alike tag b2bx only", sum(has_tag(r[4], "b2bx") and not has_tag(r[4], "b2b") for r in rows)),
        ("inactive", sum(r[11] == 0 for r in rows)),
        ("invalid or missing e-mail", len(INVALID_EMAILS)),
        ("sharing an e-mail with another", sum(c for c in logins.values() if c > 1)),
        ("locale en", sum(r[12] == "en" for r in rows)),
        ("buyers (contact persons)", len(contacts)),
        ("customers with two or three buyers", sum(c > 1 for c in Counter(c[0] for c in contacts).values())),
        ("buyers with website access switched off", sum(c[6] == 0 for c in contacts)),
        ("buyers marked inactive", sum(c[5] == 0 for c in contacts)),
    )


_SCHEMA = """
CREATE TABLE customers (
    erp_id          INTEGER PRIMARY KEY,
    symbol          TEXT NOT NULL,
    name            TEXT NOT NULL,
    email           TEXT,
    tags            TEXT,
    tax_id          TEXT,
    phone           TEXT,
    price_level     TEXT,
    discount        NUMERIC(5, 2),
    sales_rep       TEXT,
    sales_rep_email TEXT,
    active          INTEGER NOT NULL DEFAULT 1,
    locale          TEXT,
    credit_limit    DECIMAL(12, 2),
    payment_terms   TEXT
);
CREATE TABLE contacts (
    erp_id          INTEGER NOT NULL REFERENCES customers (erp_id),
    contact_id      INTEGER PRIMARY KEY,
    name            TEXT,
    email           TEXT,
    phone           TEXT,
    active          INTEGER NOT NULL DEFAULT 1,
    access          INTEGER NOT NULL DEFAULT 1
);
"""


def _write_database(path: Path, rows: list[tuple[object, ...]], contacts: list[tuple[object, ...]]) -> None:
    # Written next to the target and renamed, so a reader never sees half a database.
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    conn = sqlite3.connect(partial)
    try:
        with conn:
            conn.executescript(_SCHEMA)
            conn.executemany(f"INSERT INTO customers VALUES ({', '.join('?' * 15)})", rows)
            conn.executemany(f"INSERT INTO contacts VALUES ({', '.join('?' * 7)})", contacts)
    finally:
        conn.close()
    partial.replace(path)


def _toml_string(value: str) -> str:
    # A JSON string literal is a valid TOML basic string (same escapes), non-ASCII kept readable.
    return json.dumps(value, ensure_ascii=False)


def _config_text(database: Path) -> str:
    return f"""\
# integrator demo config, written by `integrator demo`. Run:
#     integrator sync --config {_toml_string(str(database.parent / "config.toml"))[1:-1]}
# Relative paths below resolve against this file's folder, wherever you run the command from.

[source]
# The real `odbc` connector (pyodbc) over the SQLite3 ODBC driver (Debian package libsqliteodbc).
kind = "odbc"
# Absolute on purpose: an ODBC driver opens the path relative to the process's working directory, and
# paths inside a connection string are not rewritten. Moved this folder? Rerun `integrator demo --force`.
connection_string = {_toml_string(odbc_connection_string(database))}
# The consultant's query; it must return at least erp_id, name, email and tags (comma-separated).
query = {_toml_string(DEMO_QUERY)}
# One row per contact person (the customers' buyers): with it, accounts are per contact, keyed by
# (erp_id, contact_id); `access` is the buyer's own website access. Remove it for one account per customer.
contacts_query = {_toml_string(DEMO_CONTACTS_QUERY)}
# Columns of the customer query passed through to each account as a JSON object (see `accounts show`).
attributes = {_toml_string(list(DEMO_ATTRIBUTES))}

[rules]
# Customers carrying this tag get an account; " B2B", "b2B " and "b2b" all count, "b2bx" does not.
tag = "b2b"
# Customers marked inactive in the ERP are left out (and their accounts removed).
require_active = true

[store]
# The embedded default: accounts, runs and the mail outbox in SQLite, next to this file.
url = "sqlite:///integrator.db"

[accounts]
# `link`: the activation mail carries a one-time link to set a password (valid 48 h).
activation = "link"
# Used in the mails' links.
portal_url = "https://b2b.example.com"

[mail]
# `file` writes each mail as an .eml file instead of sending it: safe for a demo.
backend = "file"
# Deliver the queued activation mails at the end of each sync.
deliver_after_sync = true

[mail.file]
# One .eml file per delivered mail, in this folder.
directory = "mail"
"""


def clear_demo_state(directory: Path) -> list[Path]:
    """Delete the store and mail an earlier demo's syncs left in `directory`, so a rewrite starts clean.

    Only names the demo itself uses are touched; returns what was removed.
    """
    removed: list[Path] = []
    for name in ("integrator.db", "integrator.db-wal", "integrator.db-shm", "integrator.db-journal"):
        path = directory / name
        if path.is_file():
            path.unlink()
            removed.append(path)
    mail = directory / "mail"
    if mail.is_dir():
        for eml in sorted(mail.glob("*.eml")):
            eml.unlink()
            removed.append(eml)
    return removed


def write_demo(directory: Path, customers: int = 240, seed: int = 7) -> DemoPaths:
    """Write `directory/erp.db` (a sample ERP) and `directory/config.toml` (syncing it), replacing both."""
    if customers < MIN_CUSTOMERS:
        raise ValueError(f"a demo needs at least {MIN_CUSTOMERS} customers, got {customers}")
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "erp.db"
    config = directory / "config.toml"
    rows, examples, kinds, people = _rows(customers, seed)
    rows = _attributes(rows, seed)
    contacts, planted = _contacts(rows, kinds, people, seed)
    examples.update(planted)
    _write_database(database, rows, contacts)
    config.write_text(_config_text(database), encoding="utf-8")
    shown = tuple(examples[kind] for kind in _EXAMPLE_ORDER if kind in examples)
    return DemoPaths(directory, database, config, customers, _mix(rows, contacts), shown, len(contacts))
