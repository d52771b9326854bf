// The table of every configuration key: where its value lives in a Config, its default, range
// or words, an example and its description. Parsing, validation, environment overrides, `config
// example` and the reference in docs/configuration.md all read it.

#include <type_traits>

#include "adapter/config/config.hpp"

namespace fra::config {
namespace {

// The field `Member` of the section `Section` of a Config; its type gives the key's.
template <auto Section, auto Member>
Field field() {
  using T = std::remove_cvref_t<decltype(std::declval<Config&>().*Section.*Member)>;
  constexpr Type type = std::is_same_v<T, bool> ? Type::boolean
                        : std::is_integral_v<T> ? Type::integer
                                                : Type::string;
  static_assert(type != Type::string || std::is_same_v<T, std::string>);
  return {type,
          [](const Config& c) -> Value {
            if constexpr (type == Type::integer)
              return static_cast<std::int64_t>(c.*Section.*Member);
            else
              return c.*Section.*Member;
          },
          [](Config& c, const Value& v) {
            // An integer arrives checked against the key's range, which fits T.
            if constexpr (type == Type::integer)
              c.*Section.*Member = static_cast<T>(std::get<std::int64_t>(v));
            else
              c.*Section.*Member = std::get<T>(v);
          }};
}

}  // namespace

// The name and the field of a key, from one spelling, so that the two cannot disagree.
#define FRA_KEY(section, key) \
  .name = #section "." #key, .field = field<&Config::section, &decltype(Config::section)::key>()

const std::vector<KeySpec>& key_specs() {
  static const std::vector<KeySpec> kSpecs{
      {FRA_KEY(fhir, base_url), .example = "\"http://127.0.0.1:8103/fhir/R4\"",
       .description = "Base URL of the FHIR R4 server, e.g. `https://ehr.example.org/fhir/R4`"},
      {FRA_KEY(fhir, page_size), .default_value = "200", .min = 1, .max = 1000,
       .description = "Resources asked for per search page (`_count`), and per `_history` page"},
      {FRA_KEY(fhir, timeout_seconds), .default_value = "30", .min = 1, .max = 600,
       .description =
           "Timeout of one HTTP request (connecting: this or 10 s, whichever is shorter)"},
      {FRA_KEY(fhir, max_attempts), .default_value = "5", .min = 1, .max = 20,
       .description =
           "Tries per request on 408, 425, 429, 500, 502, 503, 504, timeouts and lost "
           "connections, with exponential backoff (from 250 ms, capped at 8 s), full jitter and "
           "`Retry-After` (honoured up to 300 s)"},
      {FRA_KEY(fhir, bearer_token_file), .default_value = "", .form = "path",
       .description =
           "File holding a static bearer token (a trailing line end is cut), refused if readable"
           " by group or others; empty for no authentication"},
      {FRA_KEY(fhir, verify_tls), .default_value = "true",
       .description = "Verify the server's TLS certificate"},
      {FRA_KEY(fhir, ca_file), .default_value = "", .form = "path",
       .description =
           "PEM bundle of the CAs to trust for the FHIR server (a hospital's own CA); empty for "
           "the system's"},
      {FRA_KEY(fhir, client_cert_file), .default_value = "", .form = "path",
       .description = "PEM client certificate for mutual TLS; empty for none (goes with "
                      "`fhir.client_key_file`)"},
      {FRA_KEY(fhir, client_key_file), .default_value = "", .form = "path",
       .description =
           "PEM private key of the client certificate, refused if readable by group or others"},
      {FRA_KEY(fhir, basic_user), .default_value = "",
       .description = "HTTP basic authentication user; empty for none"},
      {FRA_KEY(fhir, basic_password_file), .default_value = "", .form = "path",
       .description =
           "File holding the basic authentication password (a trailing line end is cut), refused"
           " if readable by group or others (required with a user)"},
      {FRA_KEY(fhir, smart_token_url), .default_value = "", .form = "URL",
       .description = "SMART Backend Services: the token endpoint; empty to not use SMART"},
      {FRA_KEY(fhir, smart_client_id), .default_value = "",
       .description =
           "SMART Backend Services: the registered client id (required with a token URL)"},
      {FRA_KEY(fhir, smart_private_key_file), .default_value = "", .form = "path",
       .description =
           "SMART Backend Services: PEM private key, RSA (signs RS384) or EC P-384 (signs "
           "ES384), refused if readable by group or others (required with a token URL)"},
      {FRA_KEY(fhir, smart_key_id), .default_value = "",
       .description =
           "SMART Backend Services: the key's `kid` in the JWK set registered with the EHR"},
      {FRA_KEY(fhir, smart_scope),
       .default_value = "system/Patient.read system/Observation.read system/Encounter.read "
                        "system/RiskAssessment.write",
       .description = "SMART Backend Services: the scopes asked for"},
      {FRA_KEY(fhir, max_requests_per_second), .default_value = "0", .min = 0, .max = 100000,
       .description =
           "At most this many requests a second to the FHIR server, over every connection of "
           "the process (0: no limit). A 429 or 503 with `Retry-After` holds every request of the "
           "process until then (at most 5 minutes)"},
      {FRA_KEY(fhir, max_in_flight), .default_value = "8", .min = 1, .max = 64,
       .description =
           "At most this many requests to the FHIR server at once, over every connection"},
      {FRA_KEY(database, url), .example = "\"postgresql://fra@127.0.0.1:5432/fra\"",
       .description =
           "libpq connection string (`host=… dbname=…`) or URL (`postgresql://…`) of the feature"
           " store"},
      {FRA_KEY(pseudonym, key_file), .form = "path",
       .example = "\"/etc/fhir-risk-adapter/pseudonym.key\"",
       .description =
           "The secret pseudonym key: at least 32 bytes, refused if readable by group or others."
           " The file's bytes are the key as they are (a trailing newline is part of it)"},
      {FRA_KEY(pseudonym, seal_key_file), .default_value = "", .form = "path",
       .description =
           "The key that seals `<type>/<id>` of every stored version, dead letter and Patient "
           "reference (AES-256-GCM): at least 32 bytes, refused if readable by group or others "
           "or equal to the pseudonym key. Empty derives it from `pseudonym.key_file`. Set it at"
           " installation: references sealed before do not open under it "
           "([operations.md](operations.md#rotate-the-keys))"},
      {FRA_KEY(model, path), .form = "path",
       .example = "\"/usr/local/share/fhir-risk-adapter/models/readmission-risk\"",
       .description =
           "Directory of the model package (`manifest.json` and the model file it names). `run` "
           "loads it again from the same path on SIGHUP"},
      {FRA_KEY(sync, overlap_seconds), .default_value = "5", .min = 0, .max = 86400,
       .description =
           "Each search (and each `_history` read) starts this long before the cursor, for "
           "servers whose `lastUpdated` order lags; versions already stored are skipped"},
      {FRA_KEY(sync, track_deletions), .default_value = "true",
       .description =
           "Follow each type's `_history` for deleted Observations and Encounters: their rows "
           "leave the store and their patients are scored again (a server without type-level "
           "history is noted once and the sync goes on)"},
      {FRA_KEY(sync, mode), .default_value = "poll", .choices = {"poll", "subscription"},
       .description =
           "`run` only. `poll`: search each type on its own interval. `subscription`: register "
           "rest-hook Subscriptions at start (`subscription.shape`), search a type when a "
           "notification names it, and search every type every `sync.safety_net_seconds` as "
           "well. Needs `subscription.endpoint`, `subscription.secret_file` and `http.listen` "
           "([operations.md](operations.md#poll-or-subscription))"},
      {FRA_KEY(sync, patient_interval_seconds), .default_value = "60", .min = 1, .max = 86400,
       .description =
           "`run`, poll mode: seconds from the end of one Patient search to the start of the "
           "next. Ignored in subscription mode"},
      {FRA_KEY(sync, encounter_interval_seconds), .default_value = "30", .min = 1, .max = 86400,
       .description = "`run`, poll mode: the same for Encounter"},
      {FRA_KEY(sync, observation_interval_seconds), .default_value = "15", .min = 1, .max = 86400,
       .description = "`run`, poll mode: the same for Observation"},
      {FRA_KEY(sync, safety_net_seconds), .default_value = "300", .min = 1, .max = 86400,
       .description =
           "`run`, subscription mode: seconds between searches of every type whether notified or"
           " not, so that a lost notification delays a score but never loses it. Ignored in poll"
           " mode"},
      {FRA_KEY(sync, strategy), .default_value = "system", .choices = {"system", "patient", "auto"},
       .description =
           "`system`: system-wide `_lastUpdated` searches of each type (cloud FHIR stores, HAPI, "
           "Medplum). `patient`: refresh each patient of the `[cohort]` in turn with "
           "patient-scoped searches (Epic, Oracle Health). `auto`: `system` when the server's "
           "CapabilityStatement declares `_lastUpdated` for Observation and Encounter, else "
           "`patient` ([operations.md](operations.md#per-patient-sync))"},
      {FRA_KEY(cohort, group_id), .default_value = "",
       .description =
           "Per-patient sync: the cohort is the members of FHIR `Group/<group_id>` (with or "
           "without `cohort.patients_file`), read again every `cohort.refresh_seconds`"},
      {FRA_KEY(cohort, patients_file), .default_value = "", .form = "path",
       .description =
           "Per-patient sync: a file of one patient a line, `Patient/<id>` or an identifier "
           "`system|value` (resolved with `Patient?identifier=`); `#` starts a comment. Its "
           "content never reaches the database or a log"},
      {FRA_KEY(cohort, refresh_seconds), .default_value = "3600", .min = 1, .max = 604800,
       .description = "Seconds between readings of the cohort's Group and file"},
      {FRA_KEY(cohort, patient_interval_seconds), .default_value = "900", .min = 1, .max = 604800,
       .description = "Seconds from the end of one refresh of a patient to the next; several `run` "
                      "processes on one database share the work"},
      {FRA_KEY(features, file), .default_value = "", .form = "path",
       .example = "\"/usr/local/share/fhir-risk-adapter/models/readmission-risk/features.toml\"",
       .description =
           "A TOML file of `[[feature]]` tables ([features.md](features.md)), relative to the "
           "configuration file; they add to the `[[feature]]` tables of the configuration "
           "itself. The shipped model's are `models/readmission-risk/features.toml`"},
      {FRA_KEY(retention, raw_inputs_days), .default_value = "0", .min = 0, .max = 36500,
       .description =
           "Observation values, encounters and dead letters older than this many days are "
           "purged, audited (`run` at start and daily; `purge` on demand); scores and their "
           "feature vectors stay. 0 keeps everything. Must be longer than every feature's "
           "window, else refused at start ([operations.md](operations.md#retention))"},
      {FRA_KEY(score, batch_size), .default_value = "1000", .min = 1, .max = 100000,
       .description =
           "Patients scored per transaction; a scoring pass takes batch after batch until the "
           "queue is empty"},
      {FRA_KEY(writeback, batch_size), .default_value = "100", .min = 1, .max = 1000,
       .description = "RiskAssessments per batch Bundle"},
      {FRA_KEY(writeback, in_flight), .default_value = "4", .min = 1, .max = 32,
       .description = "Batch Bundles sent at once, each on its own connection and thread"},
      {FRA_KEY(writeback, target), .default_value = "risk-assessment",
       .choices = {"risk-assessment", "observation"},
       .description =
           "`risk-assessment`: one RiskAssessment per patient and model. `observation`: one "
           "score Observation per patient and model (`writeback.observation_code`), for EHRs "
           "that take outside scores as a flowsheet row "
           "([operations.md](operations.md#write-back-targets))"},
      {FRA_KEY(writeback, observation_code), .default_value = "",
       .description =
           "The score Observation's code, `system|code` (the flowsheet row the EHR's analysts "
           "give); empty: `urn:fhir-risk-adapter:model|<model name>`"},
      {FRA_KEY(log, level), .default_value = "info",
       .choices = {"trace", "debug", "info", "warn", "error"},
       .description = "The least severe messages logged (`debug` adds one line per search page)"},
      {FRA_KEY(log, format), .default_value = "text", .choices = {"text", "json"},
       .description =
           "`text`: one human-readable line per event; `json`: one JSON object per line, "
           "`{\"time\", \"level\", \"message\"}`, for a log collector "
           "([operations.md](operations.md#logs))"},
      {FRA_KEY(subscription, endpoint), .default_value = "", .form = "URL",
       .description =
           "Subscription mode (required there): the URL at which the FHIR server reaches this "
           "adapter's `/notify`, e.g. `https://fra.example.org/notify`; each type's Subscription"
           " posts to it plus `/<type>`. At start, Subscriptions already on the server with that"
           " endpoint are deleted before new ones are registered, so two adapters must not share"
           " it. The adapter serves plain HTTP only: an `https` URL needs a TLS-terminating "
           "proxy in front of `http.listen`"},
      {FRA_KEY(subscription, shape), .default_value = "auto", .choices = {"auto", "r4", "backport"},
       .description =
           "Subscription mode: `r4` registers one plain R4 Subscription per resource type "
           "(criteria the type); `backport` one Subscription to a SubscriptionTopic "
           "(Subscriptions R5 Backport IG for R4), refused at start if the server's "
           "CapabilityStatement offers none; `auto` takes backport when it is offered, else r4 "
           "([operations.md](operations.md#poll-or-subscription))"},
      {FRA_KEY(subscription, topic), .default_value = "", .form = "canonical URL",
       .description = "Subscription mode, backport: the SubscriptionTopic to subscribe to, one the "
                      "CapabilityStatement advertises; empty for the first it advertises"},
      {FRA_KEY(subscription, secret_file), .default_value = "", .form = "path",
       .description =
           "Subscription mode (required there): file holding the secret the FHIR server sends in"
           " the `X-Fra-Secret` header; refused if readable by group or others (as every "
           "file holding a secret), or if it is not at least 32 printable ASCII characters (no "
           "spaces or control "
           "characters) once trailing newlines and spaces are cut. Generate it with `openssl "
           "rand -hex 32 > notify.secret; chmod 600 notify.secret`"},
      {FRA_KEY(alerts, enabled), .default_value = "false",
       .description =
           "Send one FHIR Communication (category alert, priority urgent) to "
           "`alerts.recipient` when a patient's score enters `alerts.band` or a higher one; "
           "none while it stays there ([operations.md](operations.md#alerts))"},
      {FRA_KEY(alerts, band), .default_value = "high",
       .description = "The lowest risk band that alerts: a band code of the model's manifest"},
      {FRA_KEY(alerts, recipient), .default_value = "", .form = "reference",
       .example = "\"Group/transitions-team\"",
       .description = "Who the alert goes to: `Group/<id>`, `Practitioner/<id>` or "
                      "`CareTeam/<id>` on the FHIR server. Required with `alerts.enabled`"},
      {FRA_KEY(alerts, rearm_hours), .default_value = "72", .min = 0, .max = 8760,
       .description =
           "A patient whose score left the alert band is alerted again on coming back only "
           "after it has been out this long; 0: on every return"},
      {FRA_KEY(monitoring, interval_hours), .default_value = "24", .min = 0, .max = 720,
       .description =
           "`run`: how often the monitoring figures exported in `/metrics` are computed "
           "(`fra_feature_psi`, `fra_model_auc`, ...: each feature's drift over the last 30 "
           "days and the model against the outcomes known), at start and then every this many "
           "hours; 0: never ([operations.md](operations.md#monitoring))"},
      {FRA_KEY(cds_hooks, enabled), .default_value = "false",
       .description =
           "`run`: serve the CDS Hooks service on `http.listen` (`GET /cds-services`, `POST "
           "/cds-services/<model name>`): a card with the patient's risk when a chart opens "
           "([operations.md](operations.md#cds-hooks))"},
      {FRA_KEY(cds_hooks, base_url), .default_value = "", .form = "URL",
       .description =
           "The service's public base URL as the EHR calls it, e.g. `https://fra.example.org`: "
           "a call's JWT `aud` must be `<base_url>/cds-services/<id>`. Required with "
           "`cds_hooks.enabled`"},
      {FRA_KEY(cds_hooks, issuers_file), .default_value = "", .form = "path",
       .description =
           "The EHRs trusted to call: a JSON array of `{\"iss\": ..., \"jwks_file\": PATH}` "
           "or `{\"iss\": ..., \"jku\": URL}`; a relative path is taken from the "
           "configuration file's folder. Required with `cds_hooks.enabled`"},
      {FRA_KEY(cds_hooks, indicators), .default_value = "low=info,moderate=warning,high=critical",
       .description =
           "The card's `indicator` for each band: `band=info|warning|critical`, comma-separated; "
           "a band not named gets `info`"},
      {FRA_KEY(cds_hooks, score_endpoint), .default_value = "false",
       .description =
           "Also serve `POST /score/<model name>`: a JSON object of feature values by name "
           "(`null`: missing) answered with the probability, band, margin and each feature's "
           "contribution, for data scientists; the same trust rules as the cards (the JWT's "
           "`aud` `<base_url>/score/<id>`), nothing recorded"},
      {FRA_KEY(http, listen), .default_value = "127.0.0.1:9464",
       .form = "`host:port`, IPv6 as `[::1]:9464`, or empty",
       .description =
           "`run` only: address of `/healthz`, `/readyz`, `/metrics` and `/notify`; empty for no"
           " endpoint (not allowed in subscription mode). Use `0.0.0.0:9464` in a container"},
  };
  return kSpecs;
}

#undef FRA_KEY

}  // namespace fra::config
