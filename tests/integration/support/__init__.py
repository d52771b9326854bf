"""What the integration test modules share: the environment the test command passes, the FHIR
test server, the PostgreSQL cluster, the adapter and its configuration, and "identical store".

Importing it does nothing but define names: databases, keys and configuration files are made
on first use, per test module, so that each module runs alone and in any order.
"""
from support.env import binary, cluster_url, fhir_base, fhir_origin, free_port, model_dir, module_name, work
from support.fhir import (RA_SYSTEM, faults, fhir_all, fhir_get, fhir_post, our_risk_assessments, risk_assessments,
                          vital_sign)
from support.postgres import database, psql, sql, store_url
from support.adapter import adapter, config, ok, pseudonym, pseudonym_key, write_config, write_key
from support.identical import table_hashes
from support.text import occurring

__all__ = ["binary", "cluster_url", "fhir_base", "fhir_origin", "free_port", "model_dir", "module_name", "work",
           "RA_SYSTEM", "faults", "fhir_all", "fhir_get", "fhir_post", "our_risk_assessments", "risk_assessments",
           "vital_sign", "database", "psql", "sql", "store_url", "adapter", "config", "ok", "pseudonym",
           "pseudonym_key", "write_config", "write_key", "table_hashes", "occurring"]
