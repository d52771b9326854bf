""""Identical store": two stores compared table by table by a hash of their contents.

What is compared is read from information_schema: every table of the schema the adapter
migrates into, with every column, less the exclusions below, each with its reason. A table or
column a migration adds is compared unless it is named here.
"""
from support.postgres import psql, sql

# Tables whose rows two correct runs over the same data do not share.
UNCOMPARED_TABLES = {
    # What each run did, event by event: a sync killed and restarted, or one that retried pages,
    # did other work than an uninterrupted one, so the log differs in its rows, not only in
    # their times and hashes (test_audit checks the log itself).
    "audit_log",
    # The id and hash of that log's last row.
    "audit_head",
}

# Columns whose values differ between two correct runs over the same data.
UNCOMPARED_COLUMNS = {
    # Times: when this run stored, saw, queued, scored, wrote or applied something.
    ("resource_version", "stored_at"),
    ("patient", "stored_at"),
    ("input_version", "stored_at"),
    ("dead_letter", "seen_at"),
    ("sync_cursor", "updated_at"),
    ("scoring_queue", "enqueued_at"),
    ("score", "scored_at"),
    ("score", "as_of"),  # the moment the features were taken at: the time of the scoring run
    ("risk_assessment", "written_at"),
    ("schema_migrations", "applied_at"),
    ("pseudonym_key", "set_at"),
    # Sequence numbers: a restarted or retried run draws more of them.
    ("dead_letter", "id"),
    ("score", "id"),
    # References sealed with AES-GCM under a random nonce: the same reference sealed twice differs.
    ("resource_version", "sealed_ref"),
    ("patient", "sealed_ref"),
    ("dead_letter", "sealed_ref"),
}

# Columns compared by whether they are set, not by their value (a score's id, a time).
COMPARED_BY_PRESENCE = {
    ("risk_assessment", "pending_score_id"),  # a write is pending, or not
    ("risk_assessment", "written_score_id"),  # a score was written, or not
    ("input_version", "superseded_at"),       # a newer version (or a deletion) came, or not
}


def schema_columns(url):
    """{table: [column, ...]} of every base table in the database's current schema, columns in
    their order."""
    out = {}
    for table, column in sql("SELECT c.table_name, c.column_name FROM information_schema.columns c "
                             "JOIN information_schema.tables t USING (table_schema, table_name) "
                             "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
                             "ORDER BY c.table_name, c.ordinal_position", url):
        out.setdefault(table, []).append(column)
    return out


def compared_columns(url):
    """{table: [SQL expression, ...]}: what table_hashes compares in the database at `url`."""
    out = {}
    for table, columns in schema_columns(url).items():
        if table in UNCOMPARED_TABLES:
            continue
        out[table] = [f'"{c}" IS NULL AS "{c}_is_null"' if (table, c) in COMPARED_BY_PRESENCE else f'"{c}"'
                      for c in columns if (table, c) not in UNCOMPARED_COLUMNS]
    return out


def table_hashes(url):
    """{table: "rows:md5"} of every compared table of the database at `url`, over the compared
    columns of its rows in a fixed order."""
    parts = [f"SELECT '{table}', count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "
             f'FROM (SELECT {", ".join(columns)} FROM "{table}") t'
             for table, columns in compared_columns(url).items()]
    rows = psql(url, " UNION ALL ".join(parts)).stdout.splitlines()
    return dict(row.split("|", 1) for row in rows if row)
