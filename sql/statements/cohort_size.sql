-- The cohort: members, members due now, and refreshes so far.
SELECT count(*) FILTER (WHERE in_cohort), count(*) FILTER (WHERE in_cohort AND due_at <= now()),
       coalesce(sum(refreshes), 0)
FROM cohort_member
