-- erp: InsERT Subiekt GT (SQL Server, schema dbo)
--
-- Sources (names verified there):
--   [A] BioPlanetSA/solexb2b, SolEx.Hurt.Sync.ProviderSubiekt/MainDAO.cs (customer query, ~lines 298-331): the
--       joins kh__Kontrahent -> adr__Ewid (adr_TypAdresu = 1), vwPoziomyCenWaluty, sl_Rabat, pd_Uzytkownik,
--       kh_CechaKh -> sl_CechaKh; kh_Rodzaj IN (0, 2); kh_Pracownik joined on pk_IdKh.
--   [B] bsdnetpl/SubiektGTModels, SubiektGTModels/Models/TestowyContext.cs (an EF model generated from a GT
--       database): every table and column used here, kh_Pracownik's columns included.
-- INFERRED (not seen in a source; verify on a live database):
--   - kh_Rodzaj 1 is a supplier only (0 supplier and customer, 2 customer), as [A] filters;
--   - a blocked contractor (kh_Zablokowany) and a blocked contact person (pk_Zablokowany) are inactive;
--   - the sales rep's name is pd_Uzytkownik's first and last name (no e-mail column is known there);
--   - vwPoziomyCenWaluty may hold one row per currency for a level: the first by WALUTA is taken.
-- GT stores text as varchar in the database's Polish code page (cp1250): every text column is CAST to NVARCHAR
-- so the driver hands it over as Unicode whatever its client code page.
-- Tags: the cecha named by the option `tag` (sl_CechaKh.ckh_Nazwa, linked by kh_CechaKh), resolved by name,
-- never by an id; `tags` is that name when the contractor has it, else empty (one row per contractor, so
-- tags_layout stays "column"). Set [rules] tag to the same name. kh_CechaKh carries no change marker: the sync
-- compares whole rows, so a removed cecha is seen anyway.
-- Extra columns for [source] attributes (customers): none beyond the record columns.
--
-- option tag = 'b2b': the name of the cecha (sl_CechaKh.ckh_Nazwa) that gives a contractor portal access
-- option contacts = false: read contact persons (kh_Pracownik): one account per contact person
-- @customers
SELECT
    k.kh_Id AS erp_id,
    CAST(COALESCE(NULLIF(a.adr_NazwaPelna, ''), a.adr_Nazwa) AS NVARCHAR(255)) AS name,
    CAST(k.kh_EMail AS NVARCHAR(255)) AS email,
    CASE WHEN EXISTS (SELECT 1
                        FROM dbo.kh_CechaKh AS ck
                        JOIN dbo.sl_CechaKh AS s ON s.ckh_Id = ck.ck_IdCecha
                       WHERE ck.ck_IdKhnt = k.kh_Id AND s.ckh_Nazwa = ${tag})
         THEN ${tag} ELSE N'' END AS tags,
    CAST(k.kh_Symbol AS NVARCHAR(20)) AS symbol,
    CAST(a.adr_NIP AS NVARCHAR(20)) AS tax_id,
    CAST(a.adr_Telefon AS NVARCHAR(35)) AS phone,
    (SELECT TOP 1 CAST(pc.NAZWA AS NVARCHAR(50))
       FROM dbo.vwPoziomyCenWaluty AS pc
      WHERE pc.IDENT = k.kh_Cena
      ORDER BY pc.WALUTA) AS price_level,
    r.rt_Procent AS discount,
    CAST(CONCAT(uz.uz_Imie, N' ', uz.uz_Nazwisko) AS NVARCHAR(60)) AS sales_rep,
    CASE WHEN k.kh_Zablokowany = 1 THEN 0 ELSE 1 END AS active
FROM dbo.kh__Kontrahent AS k
JOIN dbo.adr__Ewid AS a ON a.adr_IdObiektu = k.kh_Id AND a.adr_TypAdresu = 1
LEFT JOIN dbo.sl_Rabat AS r ON r.rt_Id = k.kh_IdRabat
LEFT JOIN dbo.pd_Uzytkownik AS uz ON uz.uz_Id = k.kh_IdOpiekun
WHERE k.kh_Rodzaj IN (0, 2)
-- @contacts
SELECT
    p.pk_IdKh AS erp_id,
    p.pk_Id AS contact_id,
    CAST(p.pk_EMail AS NVARCHAR(100)) AS email,
    CAST(CONCAT(p.pk_Imie, N' ', p.pk_Nazwisko) AS NVARCHAR(60)) AS name,
    CAST(COALESCE(NULLIF(p.pk_TelKomorka, ''), p.pk_Telefon) AS NVARCHAR(35)) AS phone,
    CASE WHEN p.pk_Zablokowany = 1 THEN 0 ELSE 1 END AS active
FROM dbo.kh_Pracownik AS p
JOIN dbo.kh__Kontrahent AS k ON k.kh_Id = p.pk_IdKh
WHERE k.kh_Rodzaj IN (0, 2)
