-- Follows each scored patient in or out of the alert band, in the scoring transaction: an alert
-- is raised (pending, episodes + 1) when the score enters the band for the first time, or comes
-- back after it had left for at least the rearm time; staying in, or coming back sooner, raises
-- none. Returns the patients whose alert was raised.
--   $1 patient keys text[]  $2 score ids bigint[]  $3 in the band boolean[]  $4 model name
--   $5 rearm time, seconds
INSERT INTO alert AS a (patient_key, model_name, in_band, episodes, pending_score_id)
SELECT u.k, $4, u.b, CASE WHEN u.b THEN 1 ELSE 0 END, CASE WHEN u.b THEN u.s END
FROM unnest($1::text[], $2::bigint[], $3::boolean[]) AS u(k, s, b)
ON CONFLICT (patient_key, model_name) DO UPDATE
SET pending_score_id = CASE WHEN EXCLUDED.in_band AND NOT a.in_band
                             AND (a.left_at IS NULL OR a.left_at <= now() - $5::int * interval '1 second')
                            THEN EXCLUDED.pending_score_id ELSE a.pending_score_id END,
    episodes = a.episodes + CASE WHEN EXCLUDED.in_band AND NOT a.in_band
                                  AND (a.left_at IS NULL OR a.left_at <= now() - $5::int * interval '1 second')
                                 THEN 1 ELSE 0 END,
    left_at = CASE WHEN a.in_band AND NOT EXCLUDED.in_band THEN now() ELSE a.left_at END,
    in_band = EXCLUDED.in_band
RETURNING a.patient_key, coalesce(a.pending_score_id = ANY ($2::bigint[]), false) AS raised
