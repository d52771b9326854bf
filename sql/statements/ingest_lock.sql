-- Takes the ingest lock stripes a transaction needs, for the rest of the transaction. A page's
-- statement reads the rows it replaces as they were when it started, so two transactions storing
-- versions of the same resource at once (a backfill beside a running daemon, say) must take
-- turns. A resource's stripe is its pseudonym's first hex digit (16 stripes); a transaction locks
-- the stripes of what it stores, or all of them, so transactions on disjoint stripes (a
-- backfill's writers) run side by side. 1718775153 is any number, the same in every process.
--   $1 the stripes, an int[] in ascending order (taken in that order, so no two wait on each other)
SELECT pg_advisory_xact_lock(1718775153, s) FROM unnest($1::int[]) AS s
