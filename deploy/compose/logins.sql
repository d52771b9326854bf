-- Passwords of the logins deploy/postgresql/roles.sql makes, for compose.yaml's throwaway
-- PostgreSQL only. Run after roles.sql by the postgres image's entrypoint, as the superuser, when
-- it initialises an empty data directory. On a real server give each login its password
-- interactively (psql: \password fra_owner) or a client certificate, never from a file.
ALTER ROLE fra_owner  PASSWORD 'owner';
ALTER ROLE fra_daemon PASSWORD 'daemon';
ALTER ROLE alice      PASSWORD 'alice';
