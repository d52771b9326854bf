-- Removes raw inputs older than a cutoff ($1, epoch microseconds): observation values effective
-- before it, encounters that ended (or, open, started) before it, dead letters seen before it.
-- Returns how many of each.
WITH cutoff AS (SELECT timestamptz 'epoch' + $1::bigint * interval '1 microsecond' AS t),
values_gone AS (DELETE FROM observation_value WHERE effective < (SELECT t FROM cutoff) RETURNING 1),
encounters_gone AS (DELETE FROM encounter WHERE coalesce(period_end, period_start) < (SELECT t FROM cutoff) RETURNING 1),
dead_gone AS (DELETE FROM dead_letter WHERE seen_at < (SELECT t FROM cutoff) RETURNING 1)
SELECT (SELECT count(*) FROM values_gone), (SELECT count(*) FROM encounters_gone), (SELECT count(*) FROM dead_gone)
