-- The latest start or end of a stored encounter that counts, epoch microseconds; NULL when none.
SELECT (extract(epoch FROM max(greatest(period_start, period_end))) * 1000000)::bigint
FROM encounter WHERE counts
