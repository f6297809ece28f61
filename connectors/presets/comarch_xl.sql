-- erp: Comarch ERP XL (SQL Server, schema CDN)
--
-- Sources (names verified there):
--   [X] a public DDL dump of a Comarch ERP XL database: CDN.KntKarty (Knt_GIDTyp,
--       Knt_GIDNumer, Knt_Akronim, Knt_Nazwa1..3, Knt_Nip, Knt_EMail, Knt_Telefon1, Knt_Archiwalny,
--       Knt_Nieaktywny), CDN.KntOsoby (KnS_KntTyp, KnS_KntNumer, KnS_KntLp, KnS_Nazwa, KnS_EMail, KnS_Telefon,
--       KnS_Archiwalny, KnS_UpowaznionaZam), CDN.Atrybuty (Atr_ObiTyp, Atr_ObiNumer, Atr_AtkId, Atr_Wartosc),
--       CDN.AtrybutyKlasy (AtK_ID, AtK_Nazwa); Knt_GIDTyp = 32 for a contractor card.
-- INFERRED (not seen in a source; verify on a live database):
--   - an archived or inactive card (Knt_Archiwalny, Knt_Nieaktywny) and an archived person (KnS_Archiwalny) are
--     inactive;
--   - a contact person's id is KnS_KntLp, unique within its contractor (the account key is contractor + it);
--   - the attribute's presence tags the contractor unless its value (Atr_Wartosc) is empty, 0, NIE or N;
-- Not read, because no source above names them for XL: price level, discount, sales rep
-- (name and e-mail), credit limit, payment terms, an invoice e-mail. Leads to verify on a live database, seen
-- only in an unrelated public BI view of CDN.KntKarty: Knt_Cena (price list id), Knt_Rabat (discount),
-- Knt_LimitWart (credit limit), Knt_SpTerminPlSpr (sales payment term), Knt_EFaVatEMail (e-invoice e-mail).
-- Tags: the attribute class named by the option `tag` (CDN.AtrybutyKlasy.AtK_Nazwa), resolved by name: class
-- ids differ per install. `tags` is that name when the contractor has it, else empty (one row per contractor,
-- tags_layout "column"). Set [rules] tag to the same name. Attribute rows carry no change marker: the sync
-- compares whole rows, so a removed attribute is seen anyway.
-- An XL login with column permissions fails the whole query on one forbidden column: grant SELECT on the
-- tables below (README, "Connecting to your ERP").
--
-- option tag = 'B2B': the attribute class (CDN.AtrybutyKlasy.AtK_Nazwa) that gives a contractor portal access
-- option authorised_only = false: only contact persons authorised to order (KnS_UpowaznionaZam) get access
-- option contacts = false: read contact persons (CDN.KntOsoby): one account per contact person
-- @customers
SELECT
    k.Knt_GIDNumer AS erp_id,
    CONCAT(k.Knt_Nazwa1,
           CASE WHEN k.Knt_Nazwa2 <> '' THEN CONCAT(N' ', k.Knt_Nazwa2) END,
           CASE WHEN k.Knt_Nazwa3 <> '' THEN CONCAT(N' ', k.Knt_Nazwa3) END) AS name,
    k.Knt_EMail AS email,
    CASE WHEN EXISTS (SELECT 1
                        FROM CDN.Atrybuty AS at
                        JOIN CDN.AtrybutyKlasy AS ak ON ak.AtK_ID = at.Atr_AtkId
                       WHERE at.Atr_ObiTyp = 32 AND at.Atr_ObiNumer = k.Knt_GIDNumer
                         AND ak.AtK_Nazwa = ${tag}
                         AND COALESCE(at.Atr_Wartosc, '') NOT IN ('', '0', 'NIE', 'N'))
         THEN ${tag} ELSE N'' END AS tags,
    k.Knt_Akronim AS symbol,
    k.Knt_Nip AS tax_id,
    k.Knt_Telefon1 AS phone,
    CASE WHEN k.Knt_Archiwalny = 1 OR k.Knt_Nieaktywny = 1 THEN 0 ELSE 1 END AS active
FROM CDN.KntKarty AS k
WHERE k.Knt_GIDTyp = 32
-- @contacts
SELECT
    o.KnS_KntNumer AS erp_id,
    o.KnS_KntLp AS contact_id,
    o.KnS_EMail AS email,
    o.KnS_Nazwa AS name,
    o.KnS_Telefon AS phone,
    CASE WHEN o.KnS_Archiwalny = 1 THEN 0 ELSE 1 END AS active,
    CASE WHEN ${authorised_only} = 1 AND COALESCE(o.KnS_UpowaznionaZam, 0) = 0 THEN 0 ELSE 1 END AS access
FROM CDN.KntOsoby AS o
WHERE o.KnS_KntTyp = 32
