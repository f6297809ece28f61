-- erp: InsERT Subiekt nexo PRO (SQL Server, schema ModelDanychContainer)
--
-- Sources (names verified there):
--   [N] InsERT's database documentation shipped with nexo SDK 59.0.0.9026, "Dokumentacja bazy danych systemu
--       InsERT nexo" (serwin35/nexo-sfera-api, docs/nexoSDK_59.0.0.9026/Dokumentacja_bazy_danych_nexo.htm):
--       Podmioty #777, Firmy #251, Osoby #609, Kontakty #410, RodzajeKontaktu #1005, Cechy #57, CechaPodmiot #56,
--       Przedstawiciele #938, OpiekunowiePodmiotu #593, Uzytkownicy #1256, PoziomyCen #838, Rabaty #960.
--   [C] openlinker-project/openlinker-subiekt-bridge, docs/spikes (a probe of a live nexo database): the own
--       company is the Podmioty row with Typ = 2 AND Podtyp = 11; Typ/Podtyp came back as tinyint.
--   [A] BioPlanetSA/solexb2b, SolEx.Hurt.Sync.ProviderNexo/Provider.cs: e-mail from Kontakty by contact kind.
-- INFERRED (not seen in a source; verify on a live database):
--   - the contact kind of e-mail is named 'E-mail' in RodzajeKontaktu.Nazwa (option email_kind);
--   - a contact person is switched off when their own Podmioty row (Osoby.Podmiot_Id) is not Aktywny;
--   - a contact person without an assigned e-mail (Przedstawiciele.PrzypisanyEmail_Id) uses the primary e-mail
--     of their own Podmioty row;
--   - the sales rep is the primary manager (OpiekunowiePodmiotu.PodmiotOpiekunaPodstawowego_Id) and their e-mail
--     is the primary e-mail of the user's person (Uzytkownicy.Osoba_Id -> Osoby.Podmiot_Id -> Kontakty);
--   - discount is Rabaty.Procent (a percentage discount; amount discounts are left out);
--   - credit_limit is LimitKredytuKupieckiego when ZezwalajNaKredytKupiecki, payment_terms TerminPlatnosciSprzedaz
--     (days).
-- Tags: the cecha named by the option `tag` (Cechy.Nazwa, linked by CechaPodmiot), resolved by name, never by an
-- id (ids differ per install); `tags` is that name when the customer has the cecha, else empty: one row per
-- customer, so tags_layout stays "column". Set [rules] tag to the same name.
-- The link table CechaPodmiot has no TimeStamp: a removed cecha moves no change marker; the sync compares whole
-- rows, so it is seen anyway.
-- Extra columns for [source] attributes (customers): credit_limit, payment_terms.
--
-- option tag = 'b2b': the name of the cecha (Cechy.Nazwa) that gives a customer portal access
-- option email_kind = 'E-mail': the name of the e-mail contact kind (RodzajeKontaktu.Nazwa)
-- option contacts = false: read contact persons (Przedstawiciele): one account per contact person
-- @customers
SELECT
    p.Id AS erp_id,
    COALESCE(f.Nazwa, p.NazwaSkrocona) AS name,
    (SELECT TOP 1 k.Wartosc
       FROM ModelDanychContainer.Kontakty AS k
       JOIN ModelDanychContainer.RodzajeKontaktu AS rk ON rk.Id = k.Rodzaj_Id
      WHERE k.Podmiot_Id = p.Id AND rk.Nazwa = ${email_kind}
      ORDER BY k.Podstawowy DESC, k.Id) AS email,
    CASE WHEN EXISTS (SELECT 1
                        FROM ModelDanychContainer.CechaPodmiot AS cp
                        JOIN ModelDanychContainer.Cechy AS c ON c.Id = cp.Cechy_Id
                       WHERE cp.Podmioty_Id = p.Id AND c.Nazwa = ${tag})
         THEN ${tag} ELSE N'' END AS tags,
    p.Sygnatura_PelnaSygnatura AS symbol,
    p.NIP AS tax_id,
    p.Telefon AS phone,
    pc.Nazwa AS price_level,
    r.Procent AS discount,
    (SELECT TOP 1 u.Nazwa
       FROM ModelDanychContainer.OpiekunowiePodmiotu AS op
       JOIN ModelDanychContainer.Uzytkownicy AS u ON u.Id = op.UzytkownikId
      WHERE op.PodmiotOpiekunaPodstawowego_Id = p.Id
      ORDER BY op.Id) AS sales_rep,
    (SELECT TOP 1 ku.Wartosc
       FROM ModelDanychContainer.OpiekunowiePodmiotu AS op
       JOIN ModelDanychContainer.Uzytkownicy AS u ON u.Id = op.UzytkownikId
       JOIN ModelDanychContainer.Osoby AS uo ON uo.Id = u.Osoba_Id
       JOIN ModelDanychContainer.Kontakty AS ku ON ku.Podmiot_Id = uo.Podmiot_Id
       JOIN ModelDanychContainer.RodzajeKontaktu AS rku ON rku.Id = ku.Rodzaj_Id
      WHERE op.PodmiotOpiekunaPodstawowego_Id = p.Id AND rku.Nazwa = ${email_kind}
      ORDER BY op.Id, ku.Podstawowy DESC, ku.Id) AS sales_rep_email,
    CASE WHEN p.Aktywny = 1 THEN 1 ELSE 0 END AS active,
    CASE WHEN p.ZezwalajNaKredytKupiecki = 1 THEN p.LimitKredytuKupieckiego END AS credit_limit,
    p.TerminPlatnosciSprzedaz AS payment_terms
FROM ModelDanychContainer.Podmioty AS p
LEFT JOIN ModelDanychContainer.Firmy AS f ON f.Firma_Podmiot_Id = p.Id
LEFT JOIN ModelDanychContainer.PoziomyCen AS pc ON pc.Id = p.Podmiot_PoziomCen_Id
LEFT JOIN ModelDanychContainer.Rabaty AS r ON r.Id = p.Podmiot_Rabat_Id
WHERE NOT (p.Typ = 2 AND p.Podtyp = 11)
-- @contacts
SELECT
    f.Firma_Podmiot_Id AS erp_id,
    pr.Id AS contact_id,
    COALESCE(ke.Wartosc,
             (SELECT TOP 1 ko.Wartosc
                FROM ModelDanychContainer.Kontakty AS ko
                JOIN ModelDanychContainer.RodzajeKontaktu AS rko ON rko.Id = ko.Rodzaj_Id
               WHERE ko.Podmiot_Id = o.Podmiot_Id AND rko.Nazwa = ${email_kind}
               ORDER BY ko.Podstawowy DESC, ko.Id)) AS email,
    CONCAT(o.Imie, N' ', o.Nazwisko) AS name,
    kt.Wartosc AS phone,
    CASE WHEN op.Aktywny = 0 THEN 0 ELSE 1 END AS active
FROM ModelDanychContainer.Przedstawiciele AS pr
JOIN ModelDanychContainer.Firmy AS f ON f.Id = pr.Firma_Id
JOIN ModelDanychContainer.Osoby AS o ON o.Id = pr.Osoba_Id
LEFT JOIN ModelDanychContainer.Podmioty AS op ON op.Id = o.Podmiot_Id
LEFT JOIN ModelDanychContainer.Kontakty AS ke ON ke.Id = pr.PrzypisanyEmail_Id
LEFT JOIN ModelDanychContainer.Kontakty AS kt ON kt.Id = pr.PrzypisanyTelefon_Id
