-- Roles and logins for fhir-risk-adapter (docs/compliance.md, "Roles and logins").
--
-- Run once per cluster, as a superuser, before the first `fhir-risk-adapter migrate`:
--
--   runuser -u postgres -- psql -v ON_ERROR_STOP=1 -f deploy/postgresql/roles.sql
--
-- (deploy/compose/compose.yaml runs it as is in its throwaway PostgreSQL's initialisation.)
-- then give each login a password interactively (psql: \password fra_owner, \password
-- fra_daemon, \password alice) or a client certificate; never keep a password in a file like
-- this one. The login names are examples: keep the two group roles' names, which the
-- migrations grant to, and make one auditor login per person.

-- The group roles sql/004_audit.sql grants to. Made here so that the schema owner needs no
-- CREATEROLE: 004 creates them only when they do not exist, and fails with "permission denied
-- to create role" for an owner without that right.
CREATE ROLE fra_writer  NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
CREATE ROLE fra_auditor NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;

-- Owns the database and its schema: `migrate` and `rekey` run as this login, by an
-- administrator, and nothing else does. The owner can disable the audit log's triggers.
CREATE ROLE fra_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
CREATE DATABASE fra OWNER fra_owner;

-- The daemon's login: database.url of `run`, `sync`, `backfill`, `purge`.
CREATE ROLE fra_daemon LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION IN ROLE fra_writer;

-- One login per auditor: reads the audit_* views, runs `audit verify` and `audit rescore`.
CREATE ROLE alice LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION IN ROLE fra_auditor;

-- Only these roles may connect to the database (by default every role may, and may make
-- temporary tables there). The daemon makes temporary staging tables; auditors need none.
REVOKE ALL ON DATABASE fra FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE fra TO fra_writer;
GRANT CONNECT ON DATABASE fra TO fra_auditor;
