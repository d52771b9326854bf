-- Scores of a model by ISO week (Monday, UTC) and band since $2 (epoch microseconds), with the
-- patients scored that week and the alerts sent (audit events 'alert').
--   $1 model name  $2 since
WITH s AS (
  SELECT date_trunc('week', as_of AT TIME ZONE 'UTC') AS week, band, patient_key
  FROM score
  WHERE model_name = $1 AND as_of >= timestamptz 'epoch' + $2::bigint * interval '1 microsecond'
), a AS (
  SELECT date_trunc('week', at AT TIME ZONE 'UTC') AS week, count(*) AS alerts
  FROM audit_log
  WHERE action = 'alert' AND object = $1 AND at >= timestamptz 'epoch' + $2::bigint * interval '1 microsecond'
  GROUP BY 1
)
SELECT to_char(s.week, 'YYYY-MM-DD'), s.band, count(*),
       (SELECT count(DISTINCT patient_key) FROM s s2 WHERE s2.week = s.week),
       coalesce((SELECT alerts FROM a WHERE a.week = s.week), 0)
FROM s GROUP BY s.week, s.band ORDER BY s.week, s.band
