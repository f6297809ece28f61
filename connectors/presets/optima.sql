-- erp: Comarch ERP Optima (SQL Server, schema CDN)
--
-- Sources (names verified there):
--   [A] BioPlanetSA/solexb2b, SolEx.Hurt.Sync.ProviderOptima/MainDAO.cs and Main.dbml: CDN.Kontrahenci and its
--       Knt_ columns, Knt_Ceny matching CDN.DefCeny.DfC_Lp (name DfC_Nazwa), Knt_Upust, the sales rep
--       Knt_OpiekunTyp = 3 -> CDN.PracownicyView(PracId, Imie, Nazwisko, EMail).
--   [G] Comarch's knowledge-base filter: Exists (Select * From CDN.KntAtrybuty Where Knt_KntId = KnA_PodmiotId
--       AND KnA_PodmiotTyp = 1 ...), with CDN.DefAtrybuty(DeA_DeAId, DeA_Kod).
--   [E] elerq0/ProKonsolidacja, KonsolidacjaKnt/DataModule.cs: CDN.KntOsoby (KnO_KnOId, KnO_KntId, KnO_Nazwisko,
--       KnO_Email, KnO_Telefon, KnO_GSM, KnO_Nieaktywny).
-- INFERRED (not seen in a source; verify on a live database):
--   - the attribute is matched by its code DeA_Kod (what Optima shows as the attribute's name), and its presence
--     tags the contractor unless its value (KnA_WartoscTxt) is empty, 0, NIE or N;
--   - Knt_Grupa holds the group's code as text (tag_source = 'group');
--   - discount is Knt_Upust (a percentage); [A] also reads CDN.Rabaty, left out here;
--   - an operator as sales rep (Knt_OpiekunTyp = 8) lives in the configuration database: not read;
--   - Knt_Email exists (older versions have only Knt_WiadomoscEmail).
-- Optima stores text as varchar in the database's Polish code page (cp1250): every text column is CAST to
-- NVARCHAR so the driver hands it over as Unicode.
-- Tags: option `tag` names the attribute (tag_source = 'attribute', the default) or the group
-- (tag_source = 'group'); `tags` is that name when the contractor has it, else empty (one row per contractor,
-- tags_layout "column"). Set [rules] tag to the same name. KntAtrybuty has no timestamp: the sync compares
-- whole rows, so a removed attribute is seen anyway.
--
-- option tag = 'B2B': the attribute code (CDN.DefAtrybuty.DeA_Kod) or group (Knt_Grupa) that gives access
-- option tag_source = 'attribute': 'attribute' (DefAtrybuty/KntAtrybuty) or 'group' (Knt_Grupa)
-- option contacts = false: read contact persons (CDN.KntOsoby): one account per contact person
-- @customers
SELECT
    k.Knt_KntId AS erp_id,
    CAST(CONCAT(k.Knt_Nazwa1,
                CASE WHEN k.Knt_Nazwa2 <> '' THEN CONCAT(N' ', k.Knt_Nazwa2) END,
                CASE WHEN k.Knt_Nazwa3 <> '' THEN CONCAT(N' ', k.Knt_Nazwa3) END) AS NVARCHAR(255)) AS name,
    CAST(k.Knt_Email AS NVARCHAR(255)) AS email,
    CASE WHEN (${tag_source} = N'attribute'
               AND EXISTS (SELECT 1
                             FROM CDN.KntAtrybuty AS ka
                             JOIN CDN.DefAtrybuty AS da ON da.DeA_DeAId = ka.KnA_DeAId
                            WHERE ka.KnA_PodmiotId = k.Knt_KntId AND ka.KnA_PodmiotTyp = 1
                              AND da.DeA_Kod = ${tag}
                              AND COALESCE(ka.KnA_WartoscTxt, '') NOT IN ('', '0', 'NIE', 'N')))
           OR (${tag_source} = N'group' AND k.Knt_Grupa = ${tag})
         THEN ${tag} ELSE N'' END AS tags,
    CAST(k.Knt_Kod AS NVARCHAR(50)) AS symbol,
    CAST(k.Knt_Nip AS NVARCHAR(20)) AS tax_id,
    CAST(k.Knt_Telefon1 AS NVARCHAR(35)) AS phone,
    (SELECT TOP 1 CAST(dc.DfC_Nazwa AS NVARCHAR(50)) FROM CDN.DefCeny AS dc WHERE dc.DfC_Lp = k.Knt_Ceny) AS price_level,
    k.Knt_Upust AS discount,
    (SELECT TOP 1 CAST(CONCAT(pw.Imie, N' ', pw.Nazwisko) AS NVARCHAR(100))
       FROM CDN.PracownicyView AS pw
      WHERE k.Knt_OpiekunTyp = 3 AND pw.PracId = k.Knt_OpiekunId) AS sales_rep,
    (SELECT TOP 1 CAST(pw.EMail AS NVARCHAR(255))
       FROM CDN.PracownicyView AS pw
      WHERE k.Knt_OpiekunTyp = 3 AND pw.PracId = k.Knt_OpiekunId) AS sales_rep_email,
    CASE WHEN k.Knt_Nieaktywny = 1 THEN 0 ELSE 1 END AS active
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
