-- The English Indices of Deprivation 2019 for the equity report (issue 13): which 2011 LSOA each postcode lies in, and
-- each LSOA's Index of Multiple Deprivation rank and decile (1 = the most deprived tenth of England's LSOAs). Loaded at
-- start-up from the published files (ONS postcode lookup, MHCLG IoD2019 File 7) named in the Deprivation settings: data,
-- not code. The whole lookup is replaced when the files change; deprivation_source says which files it came from.

CREATE TABLE deprivation_area (
    lsoa_code       TEXT PRIMARY KEY,       -- 2011 LSOA code, e.g. E01018293
    lsoa_name       TEXT NULL,
    imd_rank        INTEGER NULL,           -- 1 = the most deprived LSOA in England
    imd_decile      INTEGER NOT NULL CHECK (imd_decile BETWEEN 1 AND 10)
);

-- No reference to deprivation_area: the postcode lookup covers places (Wales, terminated postcodes) that the English
-- index does not rank, and those people report as "not known", not as a load failure.
CREATE TABLE deprivation_postcode (
    postcode        TEXT PRIMARY KEY,       -- normalised as the store keeps person.postcode: upper case, one space
    lsoa_code       TEXT NOT NULL
);

CREATE TABLE deprivation_source (
    name            TEXT PRIMARY KEY,       -- 'imd2019'
    postcode_file   TEXT NOT NULL,
    index_file      TEXT NOT NULL,
    content_hash    TEXT NOT NULL,          -- of both files and the local authority filter: a change is reloaded, a restart is not
    postcodes       INTEGER NOT NULL,
    areas           INTEGER NOT NULL,
    loaded_at       TIMESTAMPTZ NOT NULL
);
