-- Feature definitions moved into the configuration: an observation value's code is now
-- "system|code" (any code system a feature reads), and each score keeps the contributions that
-- explain it.
UPDATE observation_value SET code = 'http://loinc.org|' || code WHERE position('|' in code) = 0;
COMMENT ON COLUMN observation_value.code IS 'system|code of the Observation (or component) code a feature reads';
COMMENT ON COLUMN observation_value.unit IS 'UCUM unit the value was converted to: that of the first feature reading the code';

-- The features that moved the score most (TreeSHAP), largest first:
-- [{"feature": name, "value": number | null, "contribution": log-odds}]
ALTER TABLE score ADD COLUMN contributions jsonb NOT NULL DEFAULT '[]';
COMMENT ON COLUMN score.contributions IS 'top features by |TreeSHAP contribution|: [{feature, value, contribution}]';
