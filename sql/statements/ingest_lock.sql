-- Serialises ingest across processes for the rest of this transaction: a page's statement reads
-- the rows it replaces as they were when it started, so two processes storing versions of the
-- same resource at once (a backfill beside a running daemon, say) must take turns. The key is any
-- number, the same in every process.
SELECT pg_advisory_xact_lock(1718775153)
