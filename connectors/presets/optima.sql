-- erp: Comarch ERP Optima (SQL Server, schema CDN)
--
-- Sources (names verified there):
--   [A] BioPlanetSA/solexb2b, SolEx.Hurt.Sync.ProviderOptima/MainDAO.cs and Main.dbml: CDN.Kontrahenci and its
--       Knt_ columns, Knt_Ceny matching CDN.DefCeny.DfC_Lp (name DfC_Nazwa), Knt_Upust, the sales rep
--       Knt_OpiekunTyp = 3 -> CDN.PracownicyView(PracId, Imie, Nazwisko, EMail).
--   [G] Comarch's knowledge-base filter: Exists (Select * From CDN.KntAtrybuty Where Knt_KntId = KnA_PodmiotId
--       AND KnA_PodmiotTyp = 1 ...), with CDN.DefAtrybuty(DeA_DeAId, DeA_Kod).
--   [E] elerq0/ProKonsolidacja, KonsolidacjaKnt/DataModule.cs: CDN.KntOsoby (KnO_KnOId, KnO_KntId, KnO_Nazwisko,
--       KnO_Email, KnO_Telefon, KnO_GSM, KnO_Nieaktywny); Knt_Grupa read as text; Knt_LimitFlag (byte),
--       Knt_LimitKredytu (decimal), Knt_TerminPlat (byte), Knt_Termin (smallint); Knt_KatID joined to
--       CDN.Kategorie on Kat_KatID, shown by Kat_KodSzczegol.
--   [A] also, MainDAO.cs: Knt_LimitKredytu in its contractor query; "select Knt_Termin from cdn.Kontrahenci where
--       Knt_Termin>0 and Knt_TerminPlat=1" (a contractor's own payment term); the discount from CDN.Rabaty
--       (Rab_PodmiotTyp = 1, Rab_Typ = 2, Rab_PodmiotId = Knt_KntId, Rab_Rabat), as [E] joins it too.
--   Seen in [A]/[E] only, in no other source: Knt_LimitFlag, Knt_LimitKredytu,
--   Knt_TerminPlat, Knt_Termin, CDN.Kategorie.Kat_KodSzczegol.
-- INFERRED (not seen in a source; verify on a live database):
--   - the attribute is matched by its code DeA_Kod (what Optima shows as the attribute's name), and its presence
--     tags the contractor unless its value (KnA_WartoscTxt) is empty, 0, NIE or N;
--   - Knt_Grupa holds the group's code (CDN.Grupy.Gru_Nazwa) as text (tag_source = 'group');
--   - the category's name is Kat_KodSzczegol of the contractor's sales category Knt_KatID (tag_source =
--     'category');
--   - discount is the contractor's CDN.Rabaty row (Rab_Typ = 2; the largest if there were several) and, without
--     one, Knt_Upust (a percentage): this fallback order is inferred;
--   - an operator as sales rep (Knt_OpiekunTyp = 8) lives in the configuration database: not read;
--   - Knt_Email exists (older versions have only Knt_WiadomoscEmail);
--   - credit_limit is Knt_LimitKredytu when Knt_LimitFlag = 1 (a limit is set), else empty; payment_terms is
--     Knt_Termin (days) when Knt_TerminPlat = 1 (the contractor has its own term), else empty;
--   - with email_source = 'contact', the contact person is the first active KntOsoby row with an e-mail by
--     KnO_KnOId: KntOsoby has no "main contact" flag in the sources.
-- Not available: an invoice e-mail (no such column in [A] or [E]).
-- Optima stores text as varchar in the database's Polish code page (cp1250): every text column is CAST to
-- NVARCHAR so the driver hands it over as Unicode.
-- Tags: option `tag` names the attribute (tag_source = 'attribute', the default), the group (tag_source =
-- 'group') or the sales category (tag_source = 'category'); `tags` is that name when the contractor has it,
-- else empty (one row per contractor, tags_layout "column"). Set [rules] tag to the same name. KntAtrybuty has
-- no timestamp: the sync compares whole rows, so a removed attribute is seen anyway.
-- E-mail (option email_source): 'main' is the contractor's Knt_Email; 'contact' is its first active contact
-- person's KnO_Email, else Knt_Email.
-- Extra columns for [source] attributes (customers): credit_limit, payment_terms.
--
-- option tag = 'B2B': the attribute code (DefAtrybuty.DeA_Kod), group (Knt_Grupa) or category (Kategorie.Kat_KodSzczegol) that gives access
-- option tag_source = 'attribute' | 'group' | 'category': DefAtrybuty/KntAtrybuty, Knt_Grupa or Knt_KatID
-- option email_source = 'main' | 'contact': the contractor's Knt_Email, or its first active contact person's KnO_Email
-- option contacts = false: read contact persons (CDN.KntOsoby): one account per contact person
-- @customers
SELECT
    k.Knt_KntId AS erp_id,
    CAST(CONCAT(k.Knt_Nazwa1,
                CASE WHEN k.Knt_Nazwa2 <> '' THEN CONCAT(N' ', k.Knt_Nazwa2) END,
                CASE WHEN k.Knt_Nazwa3 <> '' THEN CONCAT(N' ', k.Knt_Nazwa3) END) AS NVARCHAR(255)) AS name,
    CAST(COALESCE(CASE WHEN ${email_source} = N'contact'
                       THEN (SELECT TOP 1 NULLIF(ko.KnO_Email, '')
                               FROM CDN.KntOsoby AS ko
                              WHERE ko.KnO_KntId = k.Knt_KntId AND COALESCE(ko.KnO_Nieaktywny, 0) = 0
                                AND COALESCE(ko.KnO_Email, '') <> ''
                              ORDER BY ko.KnO_KnOId) END,
                  k.Knt_Email) AS NVARCHAR(255)) AS email,
    CASE WHEN (${tag_source} = N'attribute'
               AND EXISTS (SELECT 1
                             FROM CDN.KntAtrybuty AS ka
                             JOIN CDN.DefAtrybuty AS da ON da.DeA_DeAId = ka.KnA_DeAId
                            WHERE ka.KnA_PodmiotId = k.Knt_KntId AND ka.KnA_PodmiotTyp = 1
                              AND da.DeA_Kod = ${tag}
                              AND COALESCE(ka.KnA_WartoscTxt, '') NOT IN ('', '0', 'NIE', 'N')))
           OR (${tag_source} = N'group' AND k.Knt_Grupa = ${tag})
           OR (${tag_source} = N'category'
               AND EXISTS (SELECT 1 FROM CDN.Kategorie AS kat
                            WHERE kat.Kat_KatID = k.Knt_KatID AND kat.Kat_KodSzczegol = ${tag}))
         THEN ${tag} ELSE N'' END AS tags,
    CAST(k.Knt_Kod AS NVARCHAR(50)) AS symbol,
    CAST(k.Knt_Nip AS NVARCHAR(20)) AS tax_id,
    CAST(k.Knt_Telefon1 AS NVARCHAR(35)) AS phone,
    (SELECT TOP 1 CAST(dc.DfC_Nazwa AS NVARCHAR(50)) FROM CDN.DefCeny AS dc WHERE dc.DfC_Lp = k.Knt_Ceny) AS price_level,
    COALESCE((SELECT MAX(rb.Rab_Rabat)
                FROM CDN.Rabaty AS rb
               WHERE rb.Rab_PodmiotTyp = 1 AND rb.Rab_Typ = 2 AND rb.Rab_PodmiotId = k.Knt_KntId),
             k.Knt_Upust) AS discount,
    (SELECT TOP 1 CAST(CONCAT(pw.Imie, N' ', pw.Nazwisko) AS NVARCHAR(100))
       FROM CDN.PracownicyView AS pw
      WHERE k.Knt_OpiekunTyp = 3 AND pw.PracId = k.Knt_OpiekunId) AS sales_rep,
    (SELECT TOP 1 CAST(pw.EMail AS NVARCHAR(255))
       FROM CDN.PracownicyView AS pw
      WHERE k.Knt_OpiekunTyp = 3 AND pw.PracId = k.Knt_OpiekunId) AS sales_rep_email,
    CASE WHEN k.Knt_Nieaktywny = 1 THEN 0 ELSE 1 END AS active,
    CASE WHEN k.Knt_LimitFlag = 1 THEN k.Knt_LimitKredytu END AS credit_limit,
    CASE WHEN k.Knt_TerminPlat = 1 THEN k.Knt_Termin END AS payment_terms
FROM CDN.Kontrahenci AS k
WHERE k.Knt_PodmiotTyp = 1
-- @contacts
SELECT
    o.KnO_KntId AS erp_id,
    o.KnO_KnOId AS contact_id,
    CAST(o.KnO_Email AS NVARCHAR(255)) AS email,
    CAST(o.KnO_Nazwisko AS NVARCHAR(100)) AS name,
    CAST(COALESCE(NULLIF(o.KnO_GSM, ''), o.KnO_Telefon) AS NVARCHAR(35)) AS phone,
    CASE WHEN o.KnO_Nieaktywny = 1 THEN 0 ELSE 1 END AS active
FROM CDN.KntOsoby AS o
JOIN CDN.Kontrahenci AS k ON k.Knt_KntId = o.KnO_KntId
WHERE k.Knt_PodmiotTyp = 1
