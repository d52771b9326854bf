'use strict';
// Vendor profiles of the FHIR test server (`--profile open|epic|oracle`): how Epic and Oracle
// Health (Cerner Millennium) FHIR R4 APIs differ at the HTTP layer from the permissive `open`
// server, as rules over a described request. server.js asks a profile:
//
//   check(request, lookup)       a refusal ({status, outcome}) for an interaction, or undefined
//   checkSearch(type, params)    a refusal for a search's parameters, or undefined
//   paging(type, count, counted) the `_count` to honour and the size of the first page
//   defaultSort(type)            sort applied when a search has no `_sort`
//   shapeResponse(body, headers) the body and headers as this server would send them
//   shapeResource(resource)      one resource as sent (Bulk Data files too)
//   capabilityStatement(cs)      the CapabilityStatement, edited to say what the profile allows
//   token                        SMART token lifetime and the least interval between two tokens
//   bulk                         Bulk Data export: file host, and the Authorization leak check
//
// `describe` (below) turns an HTTP request or a batch entry into the request these rules see.
// RequestStats counts what arrives, for GET/POST /admin/stats.

const PROFILE_NAMES = ['open', 'epic', 'oracle'];

// ---------------------------------------------------------------------------------------------
// Refusals: an HTTP status and the OperationOutcome a server answers with it

function refusal(status, code, text, expression) {
  const issue = { severity: 'error', code, details: { text }, ...(expression ? { expression } : undefined) };
  return { status, outcome: { resourceType: 'OperationOutcome', issue: [issue] } };
}

const notSupported = (status, text) => refusal(status, 'not-supported', text);
const unknownParameter = (type, key) => refusal(400, 'invalid', `Unknown search parameter "${key}" for resource type ${type}`);
const unknownType = (type) => refusal(404, 'not-found', `Unknown resource type: ${type}`);

// ---------------------------------------------------------------------------------------------
// What a request is

const WRITES = new Set(['create', 'update', 'patch', 'delete']);

// `method`, the path below the FHIR base split in segments, the query as [key, value] pairs, the
// parsed body and the If-Match value. Returns {interaction, type, id, conditional, params,
// resource, ifMatch}; interaction is one of read, vread, search, create, update, patch, delete,
// history, capabilities, batch, transaction, export, operation.
function describe(method, segments, params, body, ifMatch) {
  const [type, id, sub] = segments;
  const request = { type, id, conditional: false, params, resource: body, ifMatch };
  const is = (interaction, extra) => ({ ...request, interaction, ...extra });
  if (segments.length === 0) {
    if (method === 'POST') return is(body?.type === 'transaction' ? 'transaction' : 'batch', { type: undefined });
    return is('search', { type: undefined });
  }
  if (type === 'metadata') return is('capabilities', { type: undefined });
  const operation = segments.find((s) => s.startsWith('$'));
  if (operation) {
    const scope = segments.indexOf(operation); // 0 system, 1 type, 2 instance
    return is(operation === '$export' ? 'export' : 'operation', {
      type: scope > 0 ? type : undefined,
      id: scope > 1 ? id : undefined,
      operation,
    });
  }
  if (id === '_history') return is('history', { id: undefined });
  if (id === '_search') return is('search', { id: undefined });
  if (segments.length === 1) {
    const byMethod = { GET: 'search', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
    return is(byMethod[method] ?? 'operation', { conditional: method !== 'GET' && method !== 'POST' });
  }
  if (segments.length === 2) {
    const byMethod = { GET: 'read', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
    return is(byMethod[method] ?? 'operation');
  }
  if (sub === '_history') return is(segments.length === 3 ? 'history' : 'vread');
  return is('operation');
}

// A batch or transaction entry as a request: `request.url` is `Type`, `Type/id` or `Type?query`.
function describeEntry(entry) {
  const url = typeof entry?.request?.url === 'string' ? entry.request.url : '';
  const q = url.indexOf('?');
  const path = (q < 0 ? url : url.substring(0, q)).replace(/^\/+|\/+$/g, '');
  const params = q < 0 ? [] : [...new URLSearchParams(url.substring(q + 1))];
  return describe(entry?.request?.method ?? 'GET', path ? path.split('/') : [], params, entry?.resource, entry?.request?.ifMatch);
}

// ---------------------------------------------------------------------------------------------
// Search parameter helpers

// The parameter codes present (`subject:Patient` and `patient.identifier` count as subject and
// patient), and the values of one.
const codesOf = (params) => new Set(params.map(([key]) => key.split(':')[0].split('.')[0]));
const valuesOf = (params, code) => params.filter(([key]) => key.split(':')[0] === code).map(([, value]) => value);
const hasAny = (codes, names) => names.some((n) => codes.has(n));

// Patient searches need an id, an identifier, or demographics (a name and the birth date).
function patientSearchRefusal(codes) {
  if (hasAny(codes, ['_id', 'identifier']) || (hasAny(codes, ['family', 'name']) && codes.has('birthdate'))) return undefined;
  return refusal(400, 'required', 'Patient search requires _id or identifier, or family (or name) and birthdate',
    ['_id', 'identifier', 'family', 'birthdate']);
}

// Observation, Encounter and Condition searches need the patient (or the subject) or an id.
const PATIENT_SCOPED = new Set(['Observation', 'Encounter', 'Condition']);
function patientScopedRefusal(type, codes) {
  if (hasAny(codes, ['_id', 'patient', 'subject'])) return undefined;
  return refusal(400, 'required', `${type} search requires the patient (or subject) parameter, or _id`, ['patient', 'subject']);
}

// ---------------------------------------------------------------------------------------------
// open: today's behaviour

const open = {
  name: 'open',
  check: () => undefined,
  checkSearch: () => undefined,
  paging: (type, count) => ({ count, first: count }),
  defaultSort: () => [],
  shapeResponse: (body, headers) => ({ body, headers }),
  shapeResource: (resource) => resource,
  capabilityStatement: (cs) => cs,
  token: { lifetime: 300, minInterval: 0 },
  bulk: { fileOrigin: (origin) => origin, authorizationLeak: () => undefined },
};

// ---------------------------------------------------------------------------------------------
// Rules both vendor profiles share

// What neither vendor offers: Subscription (no rest-hook Subscriptions), RiskAssessment writes
// (no write API) and conditional update.
function vendorRefusal(request) {
  if (request.type === 'Subscription') return notSupported(405, 'Subscription is not a supported resource');
  if (!WRITES.has(request.interaction)) return undefined;
  if (request.type === 'RiskAssessment') return notSupported(405, 'RiskAssessment is not a supported resource for write');
  if (request.interaction === 'update' && request.conditional) return notSupported(405, 'conditional update is not supported');
  return undefined;
}

// Bulk Data export: Group level only, for a Group that exists.
function vendorExportRefusal(request, lookup) {
  if (request.interaction !== 'export') return undefined;
  if (request.type !== 'Group' || !request.id) {
    return notSupported(405, 'Only Group-level export (Group/<id>/$export) is supported');
  }
  if (!lookup('Group', request.id)) return refusal(404, 'not-found', `Group/${request.id} not found`);
  return undefined;
}

// Drops a capability's Subscription entry and the Subscriptions Backport declarations, makes
// conditional update unsupported, and drops `_sort` from the server-wide parameters.
function vendorCapabilities(cs, name) {
  const rest = cs.rest[0];
  rest.resource = rest.resource.filter((r) => r.type !== 'Subscription');
  for (const r of rest.resource) r.conditionalUpdate = false;
  rest.searchParam = rest.searchParam.filter((p) => p.name !== '_sort');
  delete cs.instantiates;
  delete cs.implementationGuide;
  cs.software = { ...cs.software, name: `${cs.software.name}, profile ${name}` };
  return cs;
}

const resourceEntry = (cs, type) => cs.rest[0].resource.find((r) => r.type === type);

// ---------------------------------------------------------------------------------------------
// epic

const EPIC_REFUSED_PARAMS = new Set(['_lastUpdated', '_sort', '_since']);
const EPIC_OBSERVATION_INTERACTIONS = ['read', 'search-type', 'create'];

function epicCheck(request, lookup) {
  const refused = vendorRefusal(request);
  if (refused) return refused;
  if (request.type === 'RiskAssessment') return unknownType('RiskAssessment'); // reads and searches
  if (request.interaction === 'history' || request.interaction === 'vread') {
    return notSupported(405, '_history is not supported');
  }
  if (request.interaction === 'export') {
    const exportRefused = vendorExportRefusal(request, lookup);
    if (exportRefused) return exportRefused;
    if (request.params.some(([key]) => key === '_since')) return notSupported(400, 'The _since parameter is not supported for export');
    return undefined;
  }
  if (request.type === 'Observation') {
    if (request.interaction === 'create' && request.resource?.status !== 'final') {
      return refusal(400, 'value', `Observation.status must be "final" (was "${request.resource?.status}")`, ['Observation.status']);
    }
    if (request.interaction === 'update' || request.interaction === 'patch' || request.interaction === 'delete') {
      return notSupported(405, `Observation ${request.interaction} is not supported`);
    }
  }
  return undefined;
}

function epicCheckSearch(type, params) {
  const codes = codesOf(params);
  for (const [key] of params) {
    if (EPIC_REFUSED_PARAMS.has(key.split(':')[0])) return unknownParameter(type, key);
  }
  if (type === 'Observation' && !codes.has('_id')) {
    const missing = [];
    if (!hasAny(codes, ['patient', 'subject'])) missing.push('patient (or subject)');
    if (!hasAny(codes, ['category', 'code'])) missing.push('category or code');
    if (missing.length) {
      return refusal(400, 'required',
        `Observation search requires patient (or subject) and category or code, or _id; missing: ${missing.join(' and ')}`,
        ['patient', 'subject', 'category', 'code']);
    }
  }
  if (type === 'Encounter' || type === 'Condition') return patientScopedRefusal(type, codes);
  if (type === 'Patient') return patientSearchRefusal(codes);
  return undefined;
}

// A copy of `object` without `keys`.
function omit(object, keys) {
  return Object.fromEntries(Object.entries(object).filter(([key]) => !keys.includes(key)));
}

// No version metadata: no meta.versionId, meta.lastUpdated, ETag or Last-Modified (nor the
// version in Location). `meta` goes when nothing else is left in it.
function withoutVersion(resource) {
  if (!resource || typeof resource !== 'object' || !resource.meta) return resource;
  const meta = omit(resource.meta, ['versionId', 'lastUpdated']);
  return Object.keys(meta).length ? { ...resource, meta } : omit(resource, ['meta']);
}

function epicShapeResponse(body, headers) {
  const kept = omit(headers, ['ETag', 'Last-Modified']);
  if (kept.Location) kept.Location = kept.Location.replace(/\/_history\/[^/]*$/, '');
  if (body?.resourceType !== 'Bundle' || !body.entry) return { body: withoutVersion(body), headers: kept };
  const entry = body.entry.map((e) => ({
    ...e,
    ...(e.resource ? { resource: withoutVersion(e.resource) } : undefined),
    ...(e.response ? { response: omit(e.response, ['etag', 'lastModified']) } : undefined),
  }));
  return { body: { ...body, entry }, headers: kept };
}

function epicCapabilities(cs) {
  vendorCapabilities(cs, 'epic');
  const rest = cs.rest[0];
  rest.resource = rest.resource.filter((r) => r.type !== 'RiskAssessment');
  for (const r of rest.resource) {
    r.interaction = r.interaction.filter((i) => i.code !== 'vread' && i.code !== 'history-instance');
    r.versioning = 'no-version';
    r.readHistory = false;
    r.searchParam = r.searchParam.filter((p) => !EPIC_REFUSED_PARAMS.has(p.name));
  }
  const observation = resourceEntry(cs, 'Observation');
  observation.interaction = EPIC_OBSERVATION_INTERACTIONS.map((code) => ({ code }));
  observation.documentation = 'Search requires patient (or subject) and category or code, or _id. Create requires status "final".';
  resourceEntry(cs, 'Encounter').documentation = 'Search requires patient (or subject), or _id.';
  resourceEntry(cs, 'Condition').documentation = 'Search requires patient (or subject), or _id.';
  resourceEntry(cs, 'Patient').documentation = 'Search requires _id or identifier, or family and birthdate.';
  rest.documentation = 'Search results are paged: follow Bundle.link "next". _lastUpdated, _sort and _since are not supported; ' +
    'resources carry no version metadata. Bulk Data export: Group/<id>/$export only, without _since.';
  return cs;
}

const epic = {
  ...open,
  name: 'epic',
  check: epicCheck,
  checkSearch: epicCheckSearch,
  shapeResponse: epicShapeResponse,
  shapeResource: withoutVersion,
  capabilityStatement: epicCapabilities,
};

// ---------------------------------------------------------------------------------------------
// oracle

const ORACLE_OBSERVATION_FIRST_PAGE = 50;
const ORACLE_OBSERVATION_MAX_COUNT = 200;
const LAST_UPDATED_PREFIXES = /^(ge|gt|le|lt)\d/;

function oracleCheck(request, lookup) {
  const refused = vendorRefusal(request) ?? vendorExportRefusal(request, lookup);
  if (refused) return refused;
  if (request.interaction === 'update' && !request.conditional) return ifMatchRefusal(request, lookup);
  return undefined;
}

// Updates need If-Match with the current version: W/"<versionId>" (or "<versionId>").
function ifMatchRefusal(request, lookup) {
  const where = `${request.type}/${request.id}`;
  if (!request.ifMatch) return refusal(412, 'conflict', `If-Match is required to update ${where}`);
  const current = lookup(request.type, request.id);
  if (!current) return refusal(412, 'conflict', `${where} does not exist: there is no current version to match (update does not create)`);
  const expected = current.meta?.versionId;
  const given = /^(?:W\/)?"([^"]+)"$/.exec(request.ifMatch.trim())?.[1];
  if (given !== expected) {
    return refusal(412, 'conflict', `If-Match ${request.ifMatch} does not match the current version of ${where}: W/"${expected}"`);
  }
  return undefined;
}

function oracleCheckSearch(type, params) {
  const codes = codesOf(params);
  if (codes.has('_sort')) return notSupported(400, 'The _sort parameter is not supported');
  const lastUpdated = valuesOf(params, '_lastUpdated');
  if (lastUpdated.length > 2) return refusal(400, 'invalid', '_lastUpdated may be given at most twice', ['_lastUpdated']);
  if (lastUpdated.length && codes.has('date')) {
    return refusal(400, 'invalid', '_lastUpdated cannot be combined with date', ['_lastUpdated', 'date']);
  }
  for (const value of lastUpdated.flatMap((v) => v.split(','))) {
    if (!LAST_UPDATED_PREFIXES.test(value)) {
      return refusal(400, 'invalid', `_lastUpdated needs a ge, gt, le or lt prefix (was "${value}")`, ['_lastUpdated']);
    }
  }
  if (PATIENT_SCOPED.has(type)) return patientScopedRefusal(type, codes);
  if (type === 'Patient') return patientSearchRefusal(codes);
  return undefined;
}

// Observation searches: the first page always holds 50; later pages `_count`, at most 200
// (50 when none is given).
function oraclePaging(type, count, counted) {
  if (type !== 'Observation') return { count, first: count };
  const later = counted ? Math.min(count, ORACLE_OBSERVATION_MAX_COUNT) : ORACLE_OBSERVATION_FIRST_PAGE;
  return { count: later, first: ORACLE_OBSERVATION_FIRST_PAGE };
}

// Bulk Data files are served from another host name; a client must not send it its token.
function oracleAuthorizationLeak(headers, baseHost) {
  if (!headers.authorization || headers.host === baseHost) return undefined;
  return refusal(403, 'forbidden', `Authorization must not be sent to ${headers.host}: the file URL needs no token`);
}

function oracleCapabilities(cs) {
  vendorCapabilities(cs, 'oracle');
  for (const r of cs.rest[0].resource) r.versioning = 'versioned-update';
  const riskAssessment = resourceEntry(cs, 'RiskAssessment');
  const reads = ['read', 'vread', 'search-type', 'history-instance'];
  riskAssessment.interaction = riskAssessment.interaction.filter((i) => reads.includes(i.code));
  resourceEntry(cs, 'Observation').documentation =
    'Search requires patient (or subject), or _id. The first page holds 50 resources; _count (at most 200) sizes the later pages.';
  resourceEntry(cs, 'Encounter').documentation = 'Search requires patient (or subject), or _id.';
  resourceEntry(cs, 'Condition').documentation = 'Search requires patient (or subject), or _id.';
  resourceEntry(cs, 'Patient').documentation = 'Search requires _id or identifier, or family and birthdate.';
  cs.rest[0].documentation = 'Search results are paged, newest first by _lastUpdated: follow Bundle.link "next". ' +
    '_lastUpdated takes ge, gt, le or lt, at most twice, and not with date; _sort is not supported. ' +
    'Updates need If-Match: W/"<versionId>". Bulk Data export: Group/<id>/$export only.';
  return cs;
}

const oracle = {
  ...open,
  name: 'oracle',
  check: oracleCheck,
  checkSearch: oracleCheckSearch,
  paging: oraclePaging,
  defaultSort: () => ['-_lastUpdated'],
  capabilityStatement: oracleCapabilities,
  token: { lifetime: 570, minInterval: 60 },
  bulk: { fileOrigin: (origin) => origin.replace('//127.0.0.1:', '//localhost:'), authorizationLeak: oracleAuthorizationLeak },
};

const PROFILES = { open, epic, oracle };

function getProfile(name) {
  const profile = PROFILES[name];
  if (!profile) throw new Error(`unknown profile: ${name} (one of ${PROFILE_NAMES.join(', ')})`);
  return profile;
}

// ---------------------------------------------------------------------------------------------
// Request counters (GET /admin/stats)

class RequestStats {
  constructor() {
    this.reset();
  }
  reset() {
    this.requests = 0;
    this.byInteraction = {};
    this.byType = {};
    this.throttled = 0;
    this.leakedAuthorization = 0;
  }
  count(interaction, type) {
    this.requests += 1;
    this.byInteraction[interaction] = (this.byInteraction[interaction] ?? 0) + 1;
    if (type) this.byType[type] = (this.byType[type] ?? 0) + 1;
  }
  snapshot() {
    const { requests, byInteraction, byType, throttled, leakedAuthorization } = this;
    return { requests, byInteraction, byType, throttled, leakedAuthorization };
  }
}

module.exports = { PROFILE_NAMES, getProfile, describe, describeEntry, RequestStats };
