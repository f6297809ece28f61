"""Subiekt nexo's customer tables (schema ModelDanychContainer), as InsERT's database documentation (nexo SDK 59)
names and types them, with the calls a test needs: customers with cechy, e-mails in Kontakty, contact persons
(Przedstawiciele with their Osoby and own Podmioty rows), a sales rep, and the own-company row.

Only the columns the preset reads, plus a few beside them (TimeStamp, Kontrahent), are built: the real tables
have up to 127 columns.
"""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal
from pathlib import Path

from support.replica import Replica

SCHEMA = "ModelDanychContainer"
TABLES: dict[str, dict[str, str]] = {
    "Podmioty": {
        "Id": "int", "Typ": "smallint", "Podtyp": "tinyint", "Aktywny": "bit", "Jednorazowy": "bit",
        "Kontrahent": "bit", "NazwaSkrocona": "nvarchar(128)", "Sygnatura_PelnaSygnatura": "nvarchar(64)",
        "NIP": "nvarchar(16)", "Telefon": "nvarchar(256)", "Podmiot_PoziomCen_Id": "int", "Podmiot_Rabat_Id": "int",
        "ZezwalajNaKredytKupiecki": "bit", "LimitKredytuKupieckiego": "decimal", "TerminPlatnosciSprzedaz": "int",
        "TimeStamp": "binary(8)",
    },
    "Firmy": {"Id": "int", "Firma_Podmiot_Id": "int", "Nazwa": "nvarchar(512)", "REGON": "nvarchar(20)",
              "TimeStamp": "binary(8)"},
    "Osoby": {"Id": "int", "Podmiot_Id": "int", "Imie": "nvarchar(32)", "Nazwisko": "nvarchar(64)",
              "TimeStamp": "binary(8)"},
    "Kontakty": {"Id": "int", "Podmiot_Id": "int", "Rodzaj_Id": "int", "Wartosc": "nvarchar(256)",
                 "Podstawowy": "bit", "UzytkownikId": "uniqueidentifier", "TimeStamp": "binary(8)"},
    "RodzajeKontaktu": {"Id": "int", "Nazwa": "nvarchar(32)", "TimeStamp": "binary(8)"},
    "Cechy": {"Id": "int", "Nazwa": "nvarchar(64)", "Grupa_Id": "int", "TypPodmiotu": "int", "TimeStamp": "binary(8)"},
    "CechaPodmiot": {"Cechy_Id": "int", "Podmioty_Id": "int"},
    "Przedstawiciele": {"Id": "int", "Firma_Id": "int", "Osoba_Id": "int", "FirmaGlownego_Id": "int",
                        "PrzypisanyEmail_Id": "int", "PrzypisanyTelefon_Id": "int", "Stanowisko_Id": "int",
                        "TimeStamp": "binary(8)"},
    "OpiekunowiePodmiotu": {"Id": "int", "Podmiot_Id": "int", "PodmiotOpiekunaPodstawowego_Id": "int",
                            "UzytkownikId": "uniqueidentifier", "TimeStamp": "binary(8)"},
    "Uzytkownicy": {"Id": "uniqueidentifier", "Login": "nvarchar(128)", "Nazwa": "nvarchar(32)", "Osoba_Id": "int",
                    "TimeStamp": "binary(8)"},
    "PoziomyCen": {"Id": "int", "Nazwa": "nvarchar(128)", "Symbol": "nvarchar(32)", "TimeStamp": "binary(8)"},
    "Rabaty": {"Id": "int", "Nazwa": "nvarchar(32)", "RodzajRabatu": "int", "Procent": "decimal",
               "TimeStamp": "binary(8)"},
}  # fmt: skip

FIRMA, OWN_COMPANY = (2, 1), (2, 11)
"""(Typ, Podtyp) of a customer company and of one's own company ([C]'s live probe; the doc lists no values)."""


class NexoReplica:
    """A nexo database with the seed rows every install has (contact kinds) and a test's customers."""

    def __init__(self, engine: str, where: str | Path) -> None:
        self.db = Replica(engine, SCHEMA, TABLES, where)
        self._ids = itertools.count(501)  # ids unlike a fresh install's, so nothing can lean on them
        self.email_kind, self.phone_kind = next(self._ids), next(self._ids)
        self.db.insert("RodzajeKontaktu", Id=next(self._ids), Nazwa="Telefon komórkowy")
        self.db.insert("RodzajeKontaktu", Id=self.phone_kind, Nazwa="Telefon")
        self.db.insert("RodzajeKontaktu", Id=self.email_kind, Nazwa="E-mail")
        self._cechy: dict[str, int] = {}
        self._firma: dict[int, int] = {}
        self._person_party: dict[int, int] = {}

    @property
    def connection_string(self) -> str:
        return self.db.connection_string

    def _party(self, typ: tuple[int, int], name: str, active: bool, **columns: object) -> int:
        party = next(self._ids)
        self.db.insert("Podmioty", Id=party, Typ=typ[0], Podtyp=typ[1], Aktywny=int(active), Jednorazowy=0,
                       Kontrahent=0, NazwaSkrocona=name[:128], **columns)  # fmt: skip
        return party

    def email(self, party: int, address: str, primary: bool = True) -> int:
        """An e-mail row of a party; its id."""
        contact = next(self._ids)
        self.db.insert("Kontakty", Id=contact, Podmiot_Id=party, Rodzaj_Id=self.email_kind, Wartosc=address,
                       Podstawowy=int(primary))  # fmt: skip
        return contact

    def company(
        self,
        short: str,
        full: str,
        *,
        email: str | None = None,
        nip: str | None = None,
        tags: tuple[str, ...] = (),
        active: bool = True,
        own: bool = False,
        **columns: object,
    ) -> int:
        """A company customer (Podmioty + Firmy), its primary e-mail and cechy; its Podmioty.Id (the erp_id)."""
        party = self._party(OWN_COMPANY if own else FIRMA, short, active, NIP=nip, Telefon="+48 42 630 12 34",
                            **columns)  # fmt: skip
        firma = next(self._ids)
        self.db.insert("Firmy", Id=firma, Firma_Podmiot_Id=party, Nazwa=full)
        self._firma[party] = firma
        if email is not None:
            self.email(party, "stary." + email, primary=False)  # a second e-mail: the primary one must win
            self.email(party, email)
        self.db.insert("Kontakty", Id=next(self._ids), Podmiot_Id=party, Rodzaj_Id=self.phone_kind,
                       Wartosc="+48 600 100 200", Podstawowy=1)  # fmt: skip
        for tag in tags:
            self.tag(party, tag)
        return party

    def cecha(self, name: str) -> int:
        """The cecha of that name, created on first use (a second, unrelated one too, to be skipped)."""
        if name not in self._cechy:
            self.db.insert("Cechy", Id=next(self._ids), Nazwa=f"{name} (archiwum)", TypPodmiotu=1)
            self._cechy[name] = next(self._ids)
            self.db.insert("Cechy", Id=self._cechy[name], Nazwa=name, TypPodmiotu=1)
        return self._cechy[name]

    def tag(self, party: int, name: str) -> None:
        self.db.insert("CechaPodmiot", Cechy_Id=self.cecha(name), Podmioty_Id=party)

    def untag(self, party: int, name: str) -> None:
        self.db.delete("CechaPodmiot", Cechy_Id=self.cecha(name), Podmioty_Id=party)

    def representative(self, party: int, first: str, last: str, email: str | None, *, active: bool = True) -> int:
        """A contact person of company `party`: Osoby with its own Podmioty row, Przedstawiciele with the
        assigned e-mail; the Przedstawiciele.Id (the contact_id)."""
        person_party = self._party((1, 0), f"{first} {last}", active)
        person = next(self._ids)
        self.db.insert("Osoby", Id=person, Podmiot_Id=person_party, Imie=first, Nazwisko=last)
        assigned = self.email(person_party, email) if email is not None else None
        representative = next(self._ids)
        self.db.insert("Przedstawiciele", Id=representative, Firma_Id=self._firma[party], Osoba_Id=person,
                       PrzypisanyEmail_Id=assigned)  # fmt: skip
        self._person_party[representative] = person_party
        return representative

    def switch_representative(self, representative: int, active: bool) -> None:
        """Make a contact person (their own Podmioty row) active or inactive."""
        self.db.update("Podmioty", {"Id": self._person_party[representative]}, Aktywny=int(active))

    def sales_rep(self, party: int, name: str, email: str) -> None:
        """A nexo user as the customer's primary manager, with an e-mail on the user's person."""
        user, person_party, person = str(uuid.uuid4()), self._party((1, 0), name, True), next(self._ids)
        self.db.insert("Osoby", Id=person, Podmiot_Id=person_party, Imie=name.split()[0], Nazwisko=name.split()[-1])
        self.email(person_party, email)
        self.db.insert("Uzytkownicy", Id=user, Login=name.lower().replace(" ", "."), Nazwa=name, Osoba_Id=person)
        self.db.insert("OpiekunowiePodmiotu", Id=next(self._ids), Podmiot_Id=party,
                       PodmiotOpiekunaPodstawowego_Id=party, UzytkownikId=user)  # fmt: skip

    def pricing(self, party: int, level: str, discount: Decimal) -> None:
        level_id, discount_id = next(self._ids), next(self._ids)
        self.db.insert("PoziomyCen", Id=level_id, Nazwa=level, Symbol=level[:32].upper())
        self.db.insert("Rabaty", Id=discount_id, Nazwa=f"Rabat {discount}%", RodzajRabatu=0, Procent=discount)
        self.db.update("Podmioty", {"Id": party}, Podmiot_PoziomCen_Id=level_id, Podmiot_Rabat_Id=discount_id)
