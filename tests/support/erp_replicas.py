"""Replicas of Subiekt GT (schema dbo), Comarch ERP Optima and Comarch ERP XL (schema CDN) customer tables, with
one interface for the shared preset scenario: customers with tags, contact persons, switches.

Names are those in the sources each preset's header cites (public code and a DDL dump); types as far as known:
GT and Optima keep text in varchar of the Polish code page, which the PostgreSQL replica reproduces with a WIN1250
database. Only the columns the presets read, plus a few beside
them, are built. Each replica runs on SQLite, PostgreSQL or MariaDB (`MariaDbReplica`: the tables in one
database, which the translated preset reads whatever the T-SQL schema).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from support.replica import Replica, Tables
from tests.conftest import MARIADB_HOST, MARIADB_PORT

GT_TABLES: dict[str, dict[str, str]] = {
    "kh__Kontrahent": {
        "kh_Id": "int", "kh_Symbol": "varchar(20)", "kh_Rodzaj": "int", "kh_EMail": "varchar(255)",
        "kh_WWW": "varchar(255)", "kh_IdGrupa": "int", "kh_Cena": "int", "kh_IdRabat": "int", "kh_IdOpiekun": "int",
        "kh_Zablokowany": "bit", "kh_Potencjalny": "bit", "kh_Jednorazowy": "bit", "kh_DataZmiany": "datetime",
        "kh_IdFormaP": "int", "kh_PlatOdroczone": "bit", "kh_MaxWartKred": "decimal",  # money in GT
    },
    "adr__Ewid": {
        "adr_Id": "int", "adr_IdObiektu": "int", "adr_TypAdresu": "int", "adr_Nazwa": "varchar(50)",
        "adr_NazwaPelna": "varchar(255)", "adr_NIP": "varchar(20)", "adr_Telefon": "varchar(35)",
        "adr_Symbol": "varchar(20)",
    },
    "kh_CechaKh": {"ck_Id": "int", "ck_IdKhnt": "int", "ck_IdCecha": "int"},
    "sl_CechaKh": {"ckh_Id": "int", "ckh_Nazwa": "varchar(50)"},
    "sl_Rabat": {"rt_Id": "int", "rt_Nazwa": "varchar(50)", "rt_Procent": "decimal"},
    "pd_Uzytkownik": {"uz_Id": "int", "uz_Identyfikator": "varchar(20)", "uz_Imie": "varchar(20)",
                      "uz_Nazwisko": "varchar(30)", "uz_Email": "varchar(255)"},
    "sl_FormaPlatnosci": {"fp_Id": "int", "fp_Nazwa": "varchar(50)", "fp_Termin": "int", "fp_Typ": "int"},
    "vwPoziomyCenWaluty": {"IDENT": "int", "NAZWA": "varchar(50)", "WALUTA": "varchar(3)", "RODZAJ": "int"},
    "kh_Pracownik": {
        "pk_Id": "int", "pk_IdKh": "int", "pk_Imie": "varchar(20)", "pk_Nazwisko": "varchar(30)",
        "pk_EMail": "varchar(100)", "pk_Telefon": "varchar(35)", "pk_TelKomorka": "varchar(35)",
        "pk_Stanowisko": "varchar(50)", "pk_Podstaw": "bit", "pk_Zablokowany": "bit", "pk_DataZmiany": "datetime",
    },
}  # fmt: skip

OPTIMA_TABLES: dict[str, dict[str, str]] = {
    "Kontrahenci": {
        "Knt_KntId": "int", "Knt_PodmiotTyp": "smallint", "Knt_Kod": "varchar(50)", "Knt_Nazwa1": "varchar(50)",
        "Knt_Nazwa2": "varchar(50)", "Knt_Nazwa3": "varchar(50)", "Knt_NipKraj": "varchar(2)",
        "Knt_Nip": "varchar(13)", "Knt_Email": "varchar(255)", "Knt_Telefon1": "varchar(30)", "Knt_Ceny": "smallint",
        "Knt_Upust": "decimal", "Knt_OpiekunTyp": "smallint", "Knt_OpiekunId": "int", "Knt_Nieaktywny": "tinyint",
        "Knt_Grupa": "varchar(20)", "Knt_TS_Mod": "datetime", "Knt_LimitFlag": "tinyint",
        "Knt_LimitKredytu": "decimal", "Knt_TerminPlat": "tinyint", "Knt_Termin": "smallint", "Knt_KatID": "int",
    },
    "Kategorie": {"Kat_KatID": "int", "Kat_KodSzczegol": "varchar(40)"},
    "Rabaty": {"Rab_PodmiotTyp": "smallint", "Rab_PodmiotId": "int", "Rab_Typ": "smallint", "Rab_Rabat": "decimal"},
    "DefCeny": {"DfC_DfCId": "int", "DfC_Lp": "smallint", "DfC_Nazwa": "varchar(40)"},
    "PracownicyView": {"PracId": "int", "Kod": "varchar(20)", "Imie": "varchar(30)", "Nazwisko": "varchar(40)",
                       "EMail": "varchar(255)", "Telefon1": "varchar(30)"},
    "DefAtrybuty": {"DeA_DeAId": "int", "DeA_Kod": "varchar(40)", "DeA_Nazwa": "varchar(255)", "DeA_Typ": "smallint",
                    "DeA_Format": "smallint"},
    "KntAtrybuty": {"KnA_KnAId": "int", "KnA_DeAId": "int", "KnA_PodmiotTyp": "smallint", "KnA_PodmiotId": "int",
                    "KnA_WartoscTxt": "varchar(255)"},
    "KntOsoby": {"KnO_KnOId": "int", "KnO_KntId": "int", "KnO_Nazwisko": "varchar(100)", "KnO_Tytul": "varchar(40)",
                 "KnO_Email": "varchar(255)", "KnO_Telefon": "varchar(30)", "KnO_GSM": "varchar(30)",
                 "KnO_Nieaktywny": "tinyint"},
}  # fmt: skip

XL_TABLES: dict[str, dict[str, str]] = {
    "KntKarty": {
        "Knt_GIDTyp": "smallint", "Knt_GIDNumer": "int", "Knt_Akronim": "varchar(20)", "Knt_Nazwa1": "varchar(250)",
        "Knt_Nazwa2": "varchar(250)", "Knt_Nazwa3": "varchar(250)", "Knt_Nip": "varchar(40)",
        "Knt_EMail": "varchar(255)", "Knt_Telefon1": "varchar(30)", "Knt_Archiwalny": "tinyint",
        "Knt_Nieaktywny": "tinyint", "Knt_LastModL": "int",
    },
    "KntOsoby": {
        "KnS_KntTyp": "smallint", "KnS_KntNumer": "int", "KnS_KntLp": "smallint", "KnS_Nazwa": "varchar(100)",
        "KnS_EMail": "varchar(255)", "KnS_Telefon": "varchar(30)", "KnS_Archiwalny": "tinyint",
        "KnS_UpowaznionaZam": "tinyint",
    },
    "Atrybuty": {"Atr_Id": "int", "Atr_ObiTyp": "smallint", "Atr_ObiNumer": "int", "Atr_AtkId": "int",
                 "Atr_Wartosc": "varchar(1024)"},
    "AtrybutyKlasy": {"AtK_ID": "int", "AtK_Nazwa": "varchar(40)"},
}  # fmt: skip


_MARIADB_TYPES = ((r"^bit$", "tinyint"), (r"^nvarchar", "varchar"), (r"^decimal$", "decimal(19,6)"))


class MariaDbReplica(Replica):
    """The ERP's tables in one MariaDB database (`where`: its name), reached through the MariaDB ODBC driver.

    On MariaDB a schema is a database; the translated preset drops the T-SQL schema and reads the database the
    connection names, as a consultant's copy of one ERP company database would be read. Identifiers are
    written in double quotes (the session runs with ANSI_QUOTES), so the shared `Replica` statements work."""

    def __init__(self, schema: str, tables: Tables, where: str | Path) -> None:
        self.engine, self.schema, self.tables, self.where = "mariadb", schema, tables, where
        with self._db() as execute:
            for table, columns in tables.items():
                kinds = {name: _mariadb_type(kind) for name, kind in columns.items()}
                definition = ", ".join(f'"{name}" {kind}' for name, kind in kinds.items())
                execute(f'CREATE TABLE "{table}" ({definition}) CHARACTER SET utf8mb4')

    @property
    def connection_string(self) -> str:
        return (
            f"Driver={{MariaDB Unicode}};Server={MARIADB_HOST};Port={MARIADB_PORT};Database={self.where};"
            "Uid=root;Pwd=;CHARSET=utf8mb4"
        )

    def drop_column(self, table: str, column: str) -> None:
        with self._db() as execute:
            execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')

    def drop_table(self, table: str) -> None:
        with self._db() as execute:
            execute(f'DROP TABLE "{table}"')

    def _name(self, table: str) -> str:
        return f'"{table}"'

    def _marks(self, count: int) -> str:
        return ", ".join(["%s"] * count)

    @contextmanager
    def _db(self) -> Iterator[Any]:
        import pymysql

        connection = pymysql.connect(
            host=MARIADB_HOST, port=MARIADB_PORT, user="root", password="", database=str(self.where),
            charset="utf8mb4", autocommit=True,
            init_command="SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')",
        )  # fmt: skip
        try:
            with connection.cursor() as cursor:
                yield lambda sql, params=(): cursor.execute(sql, tuple(params) or None)
        finally:
            connection.close()


def _mariadb_type(sql_server_type: str) -> str:
    kind = sql_server_type.lower()
    for pattern, replacement in _MARIADB_TYPES:
        kind = re.sub(pattern, replacement, kind)
    return kind


def replica(engine: str, schema: str, tables: Tables, where: str | Path) -> Replica:
    """The ERP's tables on `engine`: "sqlite" (`where` a file), "postgres" or "mariadb" (a database name)."""
    if engine == "mariadb":
        return MariaDbReplica(schema, tables, where)
    return Replica(engine, schema, tables, where)


class _Base:
    """Ids from a counter unlike a fresh install's; tag definitions created on first use, each beside a decoy."""

    def __init__(self, replica: Replica) -> None:
        self.db = replica
        self.ids = itertools.count(701)
        self._tags: dict[str, int] = {}

    @property
    def connection_string(self) -> str:
        return self.db.connection_string

    def tag_id(self, name: str) -> int:
        if name not in self._tags:
            self._define_tag(next(self.ids), f"{name} stary")
            self._tags[name] = next(self.ids)
            self._define_tag(self._tags[name], name)
        return self._tags[name]

    def _define_tag(self, tag_id: int, name: str) -> None:
        raise NotImplementedError


class GtReplica(_Base):
    """Subiekt GT: kh__Kontrahent with its main address, cechy, contact persons (kh_Pracownik)."""

    preset = "subiekt_gt"

    def __init__(self, engine: str, where: str | Path) -> None:
        super().__init__(replica(engine, "dbo", GT_TABLES, where))
        self.db.insert("vwPoziomyCenWaluty", IDENT=2, NAZWA="Hurtowa Ś", WALUTA="PLN", RODZAJ=1)
        self.db.insert("vwPoziomyCenWaluty", IDENT=2, NAZWA="Hurtowa EUR", WALUTA="XEU", RODZAJ=1)
        self.db.insert("sl_Rabat", rt_Id=5, rt_Nazwa="Stały", rt_Procent=Decimal("7.5"))
        self.db.insert("pd_Uzytkownik", uz_Id=3, uz_Identyfikator="ŁD", uz_Imie="Łukasz", uz_Nazwisko="Dąbrowski",
                       uz_Email="lukasz@mojafirma.pl")  # fmt: skip
        self.db.insert("sl_FormaPlatnosci", fp_Id=1, fp_Nazwa="Gotówka", fp_Termin=0, fp_Typ=2)
        self.db.insert("sl_FormaPlatnosci", fp_Id=6, fp_Nazwa="Przelew 14 dni", fp_Termin=14, fp_Typ=0)

    def _define_tag(self, tag_id: int, name: str) -> None:
        self.db.insert("sl_CechaKh", ckh_Id=tag_id, ckh_Nazwa=name)

    def customer(self, name: str, email: str, tags: tuple[str, ...] = (), *, kind: int = 2) -> int:
        erp_id = next(self.ids)
        self.db.insert("kh__Kontrahent", kh_Id=erp_id, kh_Symbol=f"K{erp_id}", kh_Rodzaj=kind, kh_EMail=email,
                       kh_Cena=2, kh_IdRabat=5, kh_IdOpiekun=3, kh_Zablokowany=0, kh_Potencjalny=0,
                       kh_Jednorazowy=0, kh_IdFormaP=6, kh_PlatOdroczone=1,
                       kh_MaxWartKred=Decimal("20000.00"))  # fmt: skip
        self.db.insert("adr__Ewid", adr_Id=next(self.ids), adr_IdObiektu=erp_id, adr_TypAdresu=2, adr_Nazwa="Dostawa")
        self.db.insert("adr__Ewid", adr_Id=next(self.ids), adr_IdObiektu=erp_id, adr_TypAdresu=1, adr_Nazwa=name[:50],
                       adr_NazwaPelna=name, adr_NIP="725-123-45-67", adr_Telefon="42 630 12 34")  # fmt: skip
        for tag in tags:
            self.tag(erp_id, tag)
        return erp_id

    def tag(self, erp_id: int, name: str) -> None:
        self.db.insert("kh_CechaKh", ck_Id=next(self.ids), ck_IdKhnt=erp_id, ck_IdCecha=self.tag_id(name))

    def untag(self, erp_id: int, name: str) -> None:
        self.db.delete("kh_CechaKh", ck_IdKhnt=erp_id, ck_IdCecha=self.tag_id(name))

    def contact(self, erp_id: int, first: str, last: str, email: str | None, *, main: bool = False) -> int:
        """A contact person; `main` marks the contractor's main one (pk_Podstaw)."""
        contact_id = next(self.ids)
        self.db.insert("kh_Pracownik", pk_Id=contact_id, pk_IdKh=erp_id, pk_Imie=first, pk_Nazwisko=last,
                       pk_EMail=email, pk_TelKomorka="600 100 200", pk_Podstaw=int(main),
                       pk_Zablokowany=0)  # fmt: skip
        return contact_id

    def switch_contact(self, erp_id: int, contact_id: int, active: bool) -> None:
        self.db.update("kh_Pracownik", {"pk_Id": contact_id}, pk_Zablokowany=int(not active))

    def not_a_customer(self, name: str, email: str, tags: tuple[str, ...]) -> int:
        """A supplier-only contractor (kh_Rodzaj = 1)."""
        return self.customer(name, email, tags, kind=1)


class OptimaReplica(_Base):
    """Comarch ERP Optima: CDN.Kontrahenci, attributes (DefAtrybuty/KntAtrybuty), contact persons (KntOsoby)."""

    preset = "optima"

    def __init__(self, engine: str, where: str | Path) -> None:
        super().__init__(replica(engine, "CDN", OPTIMA_TABLES, where))
        self._categories: dict[str, int] = {}
        self.db.insert("DefCeny", DfC_DfCId=11, DfC_Lp=1, DfC_Nazwa="Detaliczna")
        self.db.insert("DefCeny", DfC_DfCId=12, DfC_Lp=2, DfC_Nazwa="Hurtowa Ś")
        self.db.insert("PracownicyView", PracId=4, Kod="ŁD", Imie="Łukasz", Nazwisko="Dąbrowski",
                       EMail="lukasz@mojafirma.pl")  # fmt: skip

    def _define_tag(self, tag_id: int, name: str) -> None:
        self.db.insert("DefAtrybuty", DeA_DeAId=tag_id, DeA_Kod=name, DeA_Nazwa=f"{name} (portal)", DeA_Typ=1)

    def discount(self, erp_id: int, percent: Decimal) -> None:
        """The contractor's own discount row (CDN.Rabaty, Rab_Typ = 2), which outranks Knt_Upust."""
        self.db.insert("Rabaty", Rab_PodmiotTyp=1, Rab_PodmiotId=erp_id, Rab_Typ=2, Rab_Rabat=percent)
        # the same id of another kind of party (Rab_PodmiotTyp 2): not this contractor's discount
        self.db.insert("Rabaty", Rab_PodmiotTyp=2, Rab_PodmiotId=erp_id, Rab_Typ=2, Rab_Rabat=Decimal("99"))

    def category_id(self, name: str) -> int:
        """The id of sales category `name` (CDN.Kategorie), created on first use."""
        if name not in self._categories:
            self._categories[name] = next(self.ids)
            self.db.insert("Kategorie", Kat_KatID=self._categories[name], Kat_KodSzczegol=name)
        return self._categories[name]

    def customer(
        self,
        name: str,
        email: str,
        tags: tuple[str, ...] = (),
        *,
        group: str = "HURT",
        category: str = "Hurt",
        credit: bool = True,
    ) -> int:
        """A contractor in `group` and sales `category` (by name); `credit`: its own credit limit and payment
        term are set (Knt_LimitFlag, Knt_TerminPlat), else only values behind switched-off flags."""
        erp_id = next(self.ids)
        first, _, rest = name.partition(" ")
        self.db.insert("Kontrahenci", Knt_KntId=erp_id, Knt_PodmiotTyp=1, Knt_Kod=f"K{erp_id}", Knt_Nazwa1=first,
                       Knt_Nazwa2=rest, Knt_Nazwa3="", Knt_NipKraj="PL", Knt_Nip="7251234567", Knt_Email=email,
                       Knt_Telefon1="42 630 12 34", Knt_Ceny=2, Knt_Upust=Decimal("7.5"), Knt_OpiekunTyp=3,
                       Knt_OpiekunId=4, Knt_Nieaktywny=0, Knt_Grupa=group, Knt_KatID=self.category_id(category),
                       Knt_LimitFlag=int(credit), Knt_LimitKredytu=Decimal("15000.50"), Knt_TerminPlat=int(credit),
                       Knt_Termin=21)  # fmt: skip
        for tag in tags:
            self.tag(erp_id, tag)
        return erp_id

    def tag(self, erp_id: int, name: str, value: str = "TAK") -> None:
        self.db.insert("KntAtrybuty", KnA_KnAId=next(self.ids), KnA_DeAId=self.tag_id(name), KnA_PodmiotTyp=1,
                       KnA_PodmiotId=erp_id, KnA_WartoscTxt=value)  # fmt: skip

    def untag(self, erp_id: int, name: str) -> None:
        self.db.delete("KntAtrybuty", KnA_PodmiotId=erp_id, KnA_DeAId=self.tag_id(name))

    def contact(self, erp_id: int, first: str, last: str, email: str | None) -> int:
        contact_id = next(self.ids)
        self.db.insert("KntOsoby", KnO_KnOId=contact_id, KnO_KntId=erp_id, KnO_Nazwisko=f"{first} {last}",
                       KnO_Email=email, KnO_GSM="", KnO_Telefon="42 600 00 00", KnO_Nieaktywny=0)  # fmt: skip
        return contact_id

    def switch_contact(self, erp_id: int, contact_id: int, active: bool) -> None:
        self.db.update("KntOsoby", {"KnO_KnOId": contact_id}, KnO_Nieaktywny=int(not active))

    def not_a_customer(self, name: str, email: str, tags: tuple[str, ...]) -> int:
        """A contractor whose attribute is switched off (value NIE): it has the attribute but not the tag."""
        erp_id = self.customer(name, email)
        for tag in tags:
            self.tag(erp_id, tag, value="NIE")
        return erp_id


class XlReplica(_Base):
    """Comarch ERP XL: CDN.KntKarty, attributes (AtrybutyKlasy/Atrybuty), contact persons (KntOsoby)."""

    preset = "comarch_xl"

    def __init__(self, engine: str, where: str | Path) -> None:
        super().__init__(replica(engine, "CDN", XL_TABLES, where))
        self._lp: dict[int, itertools.count[int]] = {}

    def _define_tag(self, tag_id: int, name: str) -> None:
        self.db.insert("AtrybutyKlasy", AtK_ID=tag_id, AtK_Nazwa=name)

    def customer(self, name: str, email: str, tags: tuple[str, ...] = (), *, archived: bool = False) -> int:
        erp_id = next(self.ids)
        self.db.insert("KntKarty", Knt_GIDTyp=32, Knt_GIDNumer=erp_id, Knt_Akronim=f"K{erp_id}", Knt_Nazwa1=name,
                       Knt_Nazwa2="", Knt_Nip="725-123-45-67", Knt_EMail=email, Knt_Telefon1="42 630 12 34",
                       Knt_Archiwalny=int(archived), Knt_Nieaktywny=0)  # fmt: skip
        for tag in tags:
            self.tag(erp_id, tag)
        return erp_id

    def tag(self, erp_id: int, name: str) -> None:
        self.db.insert("Atrybuty", Atr_Id=next(self.ids), Atr_ObiTyp=32, Atr_ObiNumer=erp_id,
                       Atr_AtkId=self.tag_id(name), Atr_Wartosc="TAK")  # fmt: skip

    def untag(self, erp_id: int, name: str) -> None:
        self.db.delete("Atrybuty", Atr_ObiNumer=erp_id, Atr_AtkId=self.tag_id(name))

    def contact(self, erp_id: int, first: str, last: str, email: str | None, *, authorised: bool = True) -> int:
        lp = next(self._lp.setdefault(erp_id, itertools.count(1)))
        self.db.insert("KntOsoby", KnS_KntTyp=32, KnS_KntNumer=erp_id, KnS_KntLp=lp, KnS_Nazwa=f"{first} {last}",
                       KnS_EMail=email, KnS_Telefon="600 100 200", KnS_Archiwalny=0,
                       KnS_UpowaznionaZam=int(authorised))  # fmt: skip
        return lp

    def switch_contact(self, erp_id: int, contact_id: int, active: bool) -> None:
        self.db.update("KntOsoby", {"KnS_KntNumer": erp_id, "KnS_KntLp": contact_id}, KnS_Archiwalny=int(not active))

    def not_a_customer(self, name: str, email: str, tags: tuple[str, ...]) -> int:
        """An archived contractor card."""
        return self.customer(name, email, tags, archived=True)
