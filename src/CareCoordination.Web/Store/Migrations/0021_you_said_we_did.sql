-- "You said, we did" for the quarterly decision pack (issue 13, report 7): what people and families told us and what
-- changed because of it, kept by administrators. Each item belongs to one calendar quarter (quarter_start: the first
-- day of January, April, July or October). Retiring an item takes it out of the pack without losing what was said.
CREATE TABLE you_said_we_did (
    id              {{id}},
    quarter_start   DATE NOT NULL,
    you_said        TEXT NOT NULL,
    we_did          TEXT NOT NULL,
    heard_from      TEXT NULL,              -- where it was said: a survey, a complaint, a carers' forum
    retired_at      TIMESTAMPTZ NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_you_said_we_did_quarter ON you_said_we_did (quarter_start);
