-- erp: InsERT Subiekt GT (SQL Server, schema dbo)
--
-- Sources (names verified there):
--   [A] BioPlanetSA/solexb2b, SolEx.Hurt.Sync.ProviderSubiekt/MainDAO.cs (customer query, ~lines 298-331): the
--       joins kh__Kontrahent -> adr__Ewid (adr_TypAdresu = 1), vwPoziomyCenWaluty, sl_Rabat, pd_Uzytkownik,
--       kh_CechaKh -> sl_CechaKh; kh_Rodzaj IN (0, 2); kh_Pracownik joined on pk_IdKh AND pk_Podstaw = 1 (the
--       main contact person); kh_MaxWartKred read as the credit limit (LimitKredytu); kh_IdFormaP.
--   [B] bsdnetpl/SubiektGTModels, SubiektGTModels/Models/TestowyContext.cs (an EF model generated from a GT
--       database): every table and column used here, kh_Pracownik's columns included; kh_MaxWartKred (money);
--       Models/SlFormaPlatnosci.cs (FpId, FpNazwa, FpTermin, linked to kh__Kontrahent) and
--       Models/PdUzytkownik.cs (UzEmail).
--   Seen in [A]/[B] only, in no other source: kh_MaxWartKred, kh_IdFormaP,
--   sl_FormaPlatnosci (fp_Id, fp_Termin), pd_Uzytkownik.uz_Email.
-- INFERRED (not seen in a source; verify on a live database):
--   - kh_Rodzaj 1 is a supplier only (0 supplier and customer, 2 customer), as [A] filters;
--   - a blocked contractor (kh_Zablokowany) and a blocked contact person (pk_Zablokowany) are inactive;
--   - the sales rep's name is pd_Uzytkownik's first and last name; the e-mail column is spelled uz_Email
--     ([B] names the property UzEmail; SQL Server's usual collations ignore the case);
--   - vwPoziomyCenWaluty may hold one row per currency for a level: the first by WALUTA is taken;
--   - credit_limit is kh_MaxWartKred as [A] reads it (0 where none is set); payment_terms is the term in days
--     (fp_Termin) of the contractor's payment form (kh_IdFormaP -> sl_FormaPlatnosci.fp_Id).
-- Not available: an invoice e-mail (no such column in [A]/[B]; adr_Email's kinds am_Rodzaj are undocumented).
-- GT stores text as varchar in the database's Polish code page (cp1250): every text column is CAST to NVARCHAR
-- so the driver hands it over as Unicode whatever its client code page.
-- Tags: the cecha named by the option `tag` (sl_CechaKh.ckh_Nazwa, linked by kh_CechaKh), resolved by name,
-- never by an id; `tags` is that name when the contractor has it, else empty (one row per contractor, so
-- tags_layout stays "column"). Set [rules] tag to the same name. kh_CechaKh carries no change marker: the sync
-- compares whole rows, so a removed cecha is seen anyway.
-- E-mail (option email_source): 'main' is the contractor's kh_EMail; 'contact' is the e-mail of its main
-- contact person (kh_Pracownik with pk_Podstaw = 1, not blocked), else kh_EMail.
-- Extra columns for [source] attributes (customers): credit_limit, payment_terms.
--
-- option tag = 'b2b': the name of the cecha (sl_CechaKh.ckh_Nazwa) that gives a contractor portal access
-- option email_source = 'main' | 'contact': the contractor's kh_EMail, or its main contact person's pk_EMail
-- option contacts = false: read contact persons (kh_Pracownik): one account per contact person
-- @customers
SELECT
    k.kh_Id AS erp_id,
    CAST(COALESCE(NULLIF(a.adr_NazwaPelna, ''), a.adr_Nazwa) AS NVARCHAR(255)) AS name,
    CAST(COALESCE(CASE WHEN ${email_source} = N'contact'
                       THEN (SELECT TOP 1 NULLIF(pp.pk_EMail, '')
                               FROM dbo.kh_Pracownik AS pp
                              WHERE pp.pk_IdKh = k.kh_Id AND pp.pk_Podstaw = 1 AND pp.pk_Zablokowany = 0
                              ORDER BY pp.pk_Id) END,
                  k.kh_EMail) AS NVARCHAR(255)) AS email,
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
    CAST(NULLIF(uz.uz_Email, '') AS NVARCHAR(255)) AS sales_rep_email,
    CASE WHEN k.kh_Zablokowany = 1 THEN 0 ELSE 1 END AS active,
    k.kh_MaxWartKred AS credit_limit,
    fp.fp_Termin AS payment_terms
FROM dbo.kh__Kontrahent AS k
JOIN dbo.adr__Ewid AS a ON a.adr_IdObiektu = k.kh_Id AND a.adr_TypAdresu = 1
LEFT JOIN dbo.sl_Rabat AS r ON r.rt_Id = k.kh_IdRabat
LEFT JOIN dbo.pd_Uzytkownik AS uz ON uz.uz_Id = k.kh_IdOpiekun
LEFT JOIN dbo.sl_FormaPlatnosci AS fp ON fp.fp_Id = k.kh_IdFormaP
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
