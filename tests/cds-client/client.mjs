#!/usr/bin/env node
// CDS Hooks 2.0 client that plays the EHR: signs the client JWT, calls
// discovery, a service and its feedback endpoint, fills prefetch from a FHIR
// server, and checks every body against the JSON Schemas in ./schemas.
// Library (import from "./client.mjs") and CLI (see README.md).

import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readFileSync, realpathSync } from 'node:fs';
import {
  SignJWT,
  UnsecuredJWT,
  exportJWK,
  generateKeyPair,
  importJWK,
} from 'jose';
import Ajv from 'ajv';

const HERE = dirname(fileURLToPath(import.meta.url));
export const SCHEMA_DIR = join(HERE, 'schemas');
export const SUPPORTED_ALGS = ['ES384', 'RS384'];
export const DEFAULT_TIMEOUT_MS = 10000;

// ---------------------------------------------------------------- schemas

const SCHEMA_FILES = {
  common: 'common.schema.json',
  discovery: 'discovery.schema.json',
  request: 'request.schema.json',
  response: 'response.schema.json',
  feedback: 'feedback.schema.json',
};

let ajvInstance = null;

function ajv() {
  if (ajvInstance) return ajvInstance;
  const instance = new Ajv({ allErrors: true, strict: true, strictRequired: false });
  for (const file of Object.values(SCHEMA_FILES)) {
    instance.addSchema(JSON.parse(readFileSync(join(SCHEMA_DIR, file), 'utf8')));
  }
  ajvInstance = instance;
  return instance;
}

const SCHEMA_IDS = {
  discovery: 'urn:cds-client:discovery',
  request: 'urn:cds-client:request',
  response: 'urn:cds-client:response',
  feedback: 'urn:cds-client:feedback',
  card: 'urn:cds-client:response#/definitions/card',
};

/** Names accepted by validate(): discovery, request, response, feedback, card. */
export const SCHEMA_NAMES = Object.keys(SCHEMA_IDS);

/**
 * Validates `data` against one schema. Returns null when valid, else the ajv
 * error objects ({instancePath, schemaPath, keyword, params, message}).
 */
export function validate(name, data) {
  const id = SCHEMA_IDS[name];
  if (!id) throw new Error(`unknown schema ${name}; one of ${SCHEMA_NAMES.join(', ')}`);
  const check = ajv().getSchema(id);
  if (check(data)) return null;
  return check.errors.map(({ instancePath, schemaPath, keyword, params, message }) => ({
    instancePath, schemaPath, keyword, params, message,
  }));
}

// ---------------------------------------------------------------- keys and tokens

function checkAlg(alg) {
  if (!SUPPORTED_ALGS.includes(alg)) {
    throw new Error(`alg must be one of ${SUPPORTED_ALGS.join(', ')}, not ${alg}`);
  }
}

async function newKeyPair(alg) {
  return generateKeyPair(alg, alg.startsWith('RS') ? { extractable: true, modulusLength: 2048 } : { extractable: true });
}

/**
 * Makes a CDS Client identity: a fresh key pair for `alg`.
 * Returns {iss, kid, alg, jku, privateKey, privateJwk, jwks}.
 */
export async function makeIssuer({ alg = 'ES384', iss, kid = randomUUID(), jku } = {}) {
  checkAlg(alg);
  if (!iss) throw new Error('makeIssuer: iss is required');
  const { publicKey, privateKey } = await newKeyPair(alg);
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  return { iss, kid, alg, jku, privateKey, privateJwk, jwks: { keys: [publicJwk] } };
}

/** Writes the public JWK Set of `issuer` to `path` (JSON). */
export async function writeJwks(issuer, path) {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(issuer.jwks, null, 2) + '\n');
  return path;
}

/** The files an issuer directory holds. */
export function issuerFiles(dir) {
  return {
    issuer: join(dir, 'issuer.json'),
    privateJwk: join(dir, 'private.jwk.json'),
    jwks: join(dir, 'jwks.json'),
  };
}

/** Writes issuer.json, private.jwk.json (mode 0600) and jwks.json into `dir`. */
export async function saveIssuer(issuer, dir) {
  const files = issuerFiles(dir);
  await mkdir(dir, { recursive: true });
  const meta = { iss: issuer.iss, kid: issuer.kid, alg: issuer.alg };
  if (issuer.jku) meta.jku = issuer.jku;
  await writeFile(files.issuer, JSON.stringify(meta, null, 2) + '\n');
  await writeFile(files.privateJwk, JSON.stringify(issuer.privateJwk, null, 2) + '\n', { mode: 0o600 });
  await writeJwks(issuer, files.jwks);
  return files;
}

/** Reads an issuer directory written by saveIssuer() (or the `issuer` command). */
export async function loadIssuer(dir) {
  const files = issuerFiles(dir);
  const meta = JSON.parse(await readFile(files.issuer, 'utf8'));
  const privateJwk = JSON.parse(await readFile(files.privateJwk, 'utf8'));
  const jwks = JSON.parse(await readFile(files.jwks, 'utf8'));
  checkAlg(meta.alg);
  const privateKey = await importJWK(privateJwk, meta.alg);
  return { ...meta, privateKey, privateJwk, jwks };
}

/** Token variants the CLI's --variant and token()'s `variant` accept. */
export const TOKEN_VARIANTS = [
  'valid',          // a correct token
  'expired',        // iat now-600, exp now-300
  'wrong-aud',      // aud with "-wrong" appended
  'wrong-iss',      // iss with "-wrong" appended
  'bad-signature',  // signed by another key of the same alg under the same kid
  'unknown-kid',    // kid not in the JWKS
  'no-jti',         // jti claim left out
  'alg-none',       // unsecured JWT (alg "none"), no signature
  'future-iat',     // iat one hour ahead, exp after it
];

const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * Signs a CDS Hooks client JWT.
 * Header: {alg, kid, typ: "JWT", jku?}. Claims: {iss, aud, exp, iat, jti, sub?, tenant?, ...extra}.
 * Options: aud (required; string or array), iat (default now), exp (default iat+300),
 * jti (default random UUID), sub, tenant, jku (default issuer.jku), extra (claims merged last;
 * a claim set to undefined is removed), header (merged into the protected header),
 * omit (claim names to drop), variant (one of TOKEN_VARIANTS), expired, badSignature.
 * Returns the compact JWT string.
 */
export async function token(issuer, opts = {}) {
  const variant = opts.variant ?? (opts.expired ? 'expired' : opts.badSignature ? 'bad-signature' : 'valid');
  if (!TOKEN_VARIANTS.includes(variant)) throw new Error(`unknown token variant ${variant}`);
  if (opts.aud === undefined) throw new Error('token: aud is required');

  let iat = opts.iat ?? nowSeconds();
  let exp = opts.exp;
  if (variant === 'expired') { iat = nowSeconds() - 600; exp = iat + 300; }
  if (variant === 'future-iat') { iat = nowSeconds() + 3600; exp = iat + 300; }
  if (exp === undefined) exp = iat + 300;

  let aud = opts.aud;
  if (variant === 'wrong-aud') aud = Array.isArray(aud) ? aud.map((a) => `${a}-wrong`) : `${aud}-wrong`;
  const iss = variant === 'wrong-iss' ? `${issuer.iss}-wrong` : issuer.iss;

  const claims = { iss, aud, exp, iat, jti: opts.jti ?? randomUUID() };
  if (opts.sub !== undefined) claims.sub = opts.sub;
  if (opts.tenant !== undefined) claims.tenant = opts.tenant;
  Object.assign(claims, opts.extra ?? {});
  for (const name of [...(opts.omit ?? []), ...(variant === 'no-jti' ? ['jti'] : [])]) delete claims[name];
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];

  if (variant === 'alg-none') return new UnsecuredJWT(claims).encode();

  const header = { alg: issuer.alg, kid: issuer.kid, typ: 'JWT' };
  const jku = opts.jku ?? issuer.jku;
  if (jku) header.jku = jku;
  if (variant === 'unknown-kid') header.kid = `${issuer.kid}-unknown`;
  Object.assign(header, opts.header ?? {});

  let key = issuer.privateKey;
  if (variant === 'bad-signature') key = (await newKeyPair(issuer.alg)).privateKey;
  return new SignJWT(claims).setProtectedHeader(header).sign(key);
}

// ---------------------------------------------------------------- HTTP

function trimBase(base) {
  return String(base).replace(/\/+$/, '');
}

/** The URL of a service: {base}/cds-services/{id}; also the JWT aud the spec asks for. */
export function serviceUrl(base, id) {
  return `${trimBase(base)}/cds-services/${encodeURIComponent(id)}`;
}

async function exchange(method, url, { body, bearer, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const started = performance.now();
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  const elapsedMs = Math.round(performance.now() - started);
  let json = null;
  let parsed = false;
  if (text.length > 0) {
    try { json = JSON.parse(text); parsed = true; } catch { /* left null */ }
  }
  return { status: res.status, json, text, parsed, elapsedMs, contentType: res.headers.get('content-type') };
}

function bodyErrors(schema, r) {
  if (r.status < 200 || r.status > 299) return null;
  if (!r.parsed) {
    return [{ instancePath: '', schemaPath: '', keyword: 'json', params: {}, message: 'response body is not JSON' }];
  }
  return validate(schema, r.json);
}

function result(url, r, errors, extra = {}) {
  const out = { url, status: r.status, json: r.json, errors, elapsedMs: r.elapsedMs, ...extra };
  if (!r.parsed && r.text.length > 0) out.text = r.text.slice(0, 2000);
  return out;
}

/**
 * GET {base}/cds-services. `bearer` (optional) is sent as Authorization.
 * Returns {url, status, json, errors, elapsedMs[, text]}; errors: ajv errors of a
 * 2xx body against the discovery schema, else null.
 */
export async function discover(base, bearer, opts = {}) {
  const url = `${trimBase(base)}/cds-services`;
  const r = await exchange('GET', url, { bearer, timeoutMs: opts.timeoutMs });
  return result(url, r, bodyErrors('discovery', r));
}

/**
 * POST {base}/cds-services/{id} with `body` and `Authorization: Bearer bearer` (none if falsy).
 * Returns {url, status, json, errors, requestErrors, elapsedMs[, text]}: errors checks a 2xx
 * body against the response schema; requestErrors checks the body sent against the request schema.
 */
export async function call(base, id, body, bearer, opts = {}) {
  const url = serviceUrl(base, id);
  const requestErrors = validate('request', body);
  const r = await exchange('POST', url, { body, bearer, timeoutMs: opts.timeoutMs });
  return result(url, r, bodyErrors('response', r), { requestErrors });
}

/**
 * POST {base}/cds-services/{id}/feedback. The spec defines no response body, so
 * errors holds the request schema's verdict on the body sent (null when valid).
 * Returns {url, status, json, errors, elapsedMs[, text]}.
 */
export async function feedback(base, id, body, bearer, opts = {}) {
  const url = `${serviceUrl(base, id)}/feedback`;
  const errors = validate('feedback', body);
  const r = await exchange('POST', url, { body, bearer, timeoutMs: opts.timeoutMs });
  return result(url, r, errors);
}

/** A feedback request body for one card. */
export function feedbackBody({ card, outcome, acceptedSuggestions = [], reason, userComment, outcomeTimestamp }) {
  const entry = { card, outcome, outcomeTimestamp: outcomeTimestamp ?? new Date().toISOString() };
  if (acceptedSuggestions.length > 0) entry.acceptedSuggestions = acceptedSuggestions.map((id) => ({ id }));
  if (reason || userComment !== undefined) {
    entry.overrideReason = {};
    if (reason) entry.overrideReason.reason = reason;
    if (userComment !== undefined) entry.overrideReason.userComment = userComment;
  }
  return { feedback: [entry] };
}

// ---------------------------------------------------------------- requests and prefetch

/**
 * A patient-view request. userId defaults to "Practitioner/example" (a bare id
 * becomes "Practitioner/{id}"). accessToken adds fhirAuthorization (Bearer,
 * expires_in 300, scope "patient/*.read", subject "cds-service"), or pass
 * fhirAuthorization whole. prefetch undefined leaves the key out.
 */
export function patientViewRequest({
  fhirServer, patientId, userId = 'Practitioner/example', encounterId, prefetch, accessToken,
  fhirAuthorization, hookInstance = randomUUID(),
}) {
  if (!patientId) throw new Error('patientViewRequest: patientId is required');
  const user = userId.includes('/') ? userId : `Practitioner/${userId}`;
  const body = { hook: 'patient-view', hookInstance };
  if (fhirServer) body.fhirServer = trimBase(fhirServer);
  if (fhirAuthorization) body.fhirAuthorization = fhirAuthorization;
  else if (accessToken) {
    body.fhirAuthorization = {
      access_token: accessToken, token_type: 'Bearer', expires_in: 300,
      scope: 'patient/*.read', subject: 'cds-service', patient: patientId,
    };
  }
  body.context = { userId: user, patientId };
  if (encounterId) body.context.encounterId = encounterId;
  if (prefetch !== undefined) body.prefetch = prefetch;
  return body;
}

/**
 * Fills each prefetch template's {{context.X}} tokens (patientId from the argument,
 * others from `context`) and GETs it from fhirBase. Returns {prefetch, status}:
 * prefetch maps key → resource (200) or null (404); a key whose template has an
 * unknown token, or whose fetch failed otherwise, is left out (the spec's "not
 * fetched"). status maps key → HTTP status, "unresolved" or "error: message".
 * prefetchFor(...) resolves to the prefetch object alone; use prefetchDetailed for both.
 */
export async function prefetchDetailed(fhirBase, patientId, templates = {}, context = {}, opts = {}) {
  const values = { ...context, patientId };
  const prefetch = {};
  const status = {};
  for (const [key, template] of Object.entries(templates)) {
    let unresolved = false;
    const query = template.replace(/\{\{\s*context\.([A-Za-z0-9_]+)\s*\}\}/g, (_, name) => {
      if (values[name] === undefined || values[name] === null) { unresolved = true; return ''; }
      // A reference such as userId "Practitioner/1" keeps its slash.
      return encodeURIComponent(String(values[name])).replace(/%2F/gi, '/');
    });
    if (unresolved || /\{\{/.test(query)) { status[key] = 'unresolved'; continue; }
    const url = /^https?:\/\//.test(query) ? query : `${trimBase(fhirBase)}/${query.replace(/^\/+/, '')}`;
    try {
      const res = await fetch(url, {
        headers: { Accept: 'application/fhir+json' },
        signal: AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      });
      status[key] = res.status;
      if (res.status === 404) { prefetch[key] = null; await res.arrayBuffer(); continue; }
      if (!res.ok) { await res.arrayBuffer(); continue; }
      prefetch[key] = await res.json();
    } catch (err) {
      status[key] = `error: ${err.message}`;
    }
  }
  return { prefetch, status };
}

export async function prefetchFor(fhirBase, patientId, templates = {}, context = {}, opts = {}) {
  return (await prefetchDetailed(fhirBase, patientId, templates, context, opts)).prefetch;
}

// ---------------------------------------------------------------- CLI

const USAGE = `usage:
  node client.mjs issuer   --iss URL [--alg ES384|RS384] [--kid K] [--jku URL] --out DIR
  node client.mjs token    --issuer DIR --aud URL [--variant V] [--sub S] [--tenant T]
  (--sub S and --tenant T add those claims to the token of discover, call and feedback too)
  node client.mjs discover --base URL [--issuer DIR [--variant V]] [--no-token]
  node client.mjs call     --base URL --service ID --patient ID [--fhir URL]
                           [--issuer DIR] [--aud URL] [--variant V] [--no-token]
                           [--user Practitioner/ID] [--encounter ID] [--no-prefetch]
                           [--access-token T] [--hook-instance UUID]
  node client.mjs feedback --base URL --service ID --card UUID --outcome accepted|overridden
                           [--suggestion UUID]... [--reason-code C --reason-system S [--reason-display D]]
                           [--comment TEXT] [--timestamp ISO] [--issuer DIR] [--aud URL] [--variant V] [--no-token]
  node client.mjs validate --schema discovery|request|response|feedback|card --file PATH|-
common: [--timeout MS]   variants: ${TOKEN_VARIANTS.join(', ')}
exit: 0 ok, 1 schema errors (or body not JSON), 2 usage, 3 HTTP status not 2xx, 4 runtime error (network, files)`;

const COMMAND_OPTIONS = {
  issuer: ['iss', 'alg', 'kid', 'jku', 'out'],
  token: ['issuer', 'aud', 'variant', 'sub', 'tenant'],
  discover: ['base', 'issuer', 'variant', 'sub', 'tenant', 'no-token'],
  call: ['base', 'service', 'patient', 'fhir', 'issuer', 'aud', 'variant', 'sub', 'tenant', 'no-token', 'user',
    'encounter', 'no-prefetch', 'access-token', 'hook-instance'],
  feedback: ['base', 'service', 'card', 'outcome', 'suggestion', 'reason-code', 'reason-system', 'reason-display',
    'comment', 'timestamp', 'issuer', 'aud', 'variant', 'sub', 'tenant', 'no-token'],
  validate: ['schema', 'file'],
};

const FLAGS = new Set(['no-prefetch', 'no-token', 'help']);
const REPEATED = new Set(['suggestion']);

export function parseArgs(argv) {
  const [command, ...rest] = argv;
  const opts = {};
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument ${arg}`);
    let name = arg.slice(2);
    let value;
    const eq = name.indexOf('=');
    if (eq >= 0) { value = name.slice(eq + 1); name = name.slice(0, eq); }
    if (FLAGS.has(name)) { opts[name] = true; continue; }
    if (value === undefined) {
      if (i + 1 >= rest.length) throw new UsageError(`--${name} needs a value`);
      value = rest[++i];
    }
    if (REPEATED.has(name)) (opts[name] ??= []).push(value);
    else opts[name] = value;
  }
  return { command, opts };
}

class UsageError extends Error {}

function need(opts, ...names) {
  for (const n of names) if (opts[n] === undefined) throw new UsageError(`--${n} is required`);
}

function timeoutOf(opts) {
  if (opts.timeout === undefined) return DEFAULT_TIMEOUT_MS;
  const ms = Number(opts.timeout);
  if (!Number.isFinite(ms) || ms <= 0) throw new UsageError('--timeout must be a positive number of milliseconds');
  return ms;
}

async function bearerFor(opts, aud) {
  if (opts['no-token'] || !opts.issuer) return { bearer: null, variant: null };
  const issuer = await loadIssuer(opts.issuer);
  const variant = opts.variant ?? 'valid';
  return { bearer: await token(issuer, { aud: opts.aud ?? aud, variant, sub: opts.sub, tenant: opts.tenant }), variant };
}

function exitFor(r) {
  if (r.status < 200 || r.status > 299) return 3;
  return r.errors ? 1 : 0;
}

async function runCli(argv) {
  const { command, opts } = parseArgs(argv);
  if (!command || command === 'help' || opts.help) return { out: null, code: command ? 0 : 2, usage: true };
  const allowed = COMMAND_OPTIONS[command];
  if (!allowed) throw new UsageError(`unknown command ${command}`);
  for (const name of Object.keys(opts)) {
    if (!allowed.includes(name) && name !== 'timeout') throw new UsageError(`${command}: unknown option --${name}`);
  }
  if (opts.alg !== undefined && !SUPPORTED_ALGS.includes(opts.alg)) throw new UsageError(`--alg must be one of ${SUPPORTED_ALGS.join(', ')}`);
  if (opts.variant !== undefined && !TOKEN_VARIANTS.includes(opts.variant)) throw new UsageError(`--variant must be one of ${TOKEN_VARIANTS.join(', ')}`);
  const timeoutMs = timeoutOf(opts);

  if (command === 'issuer') {
    need(opts, 'iss', 'out');
    const issuer = await makeIssuer({ alg: opts.alg ?? 'ES384', iss: opts.iss, kid: opts.kid, jku: opts.jku });
    const files = await saveIssuer(issuer, opts.out);
    return {
      code: 0,
      out: { command, iss: issuer.iss, kid: issuer.kid, alg: issuer.alg, jku: issuer.jku ?? null, files, jwks: issuer.jwks },
    };
  }

  if (command === 'token') {
    need(opts, 'issuer', 'aud');
    const issuer = await loadIssuer(opts.issuer);
    const variant = opts.variant ?? 'valid';
    const jwt = await token(issuer, { aud: opts.aud, variant, sub: opts.sub, tenant: opts.tenant });
    const [h, p] = jwt.split('.');
    const decode = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    return { code: 0, out: { command, variant, token: jwt, header: decode(h), claims: decode(p) } };
  }

  if (command === 'validate') {
    need(opts, 'schema', 'file');
    if (!SCHEMA_NAMES.includes(opts.schema)) throw new UsageError(`--schema must be one of ${SCHEMA_NAMES.join(', ')}`);
    const text = opts.file === '-' ? readFileSync(0, 'utf8') : await readFile(opts.file, 'utf8');
    const errors = validate(opts.schema, JSON.parse(text));
    return { code: errors ? 1 : 0, out: { command, schema: opts.schema, errors } };
  }

  if (command === 'discover') {
    need(opts, 'base');
    const { bearer, variant } = await bearerFor(opts, `${trimBase(opts.base)}/cds-services`);
    const r = await discover(opts.base, bearer, { timeoutMs });
    return { code: exitFor(r), out: { command, ...r, tokenVariant: variant } };
  }

  if (command === 'call') {
    need(opts, 'base', 'service', 'patient');
    const base = trimBase(opts.base);
    let prefetch;
    let prefetchStatus = null;
    let discovery = null;
    if (!opts['no-prefetch']) {
      if (!opts.fhir) throw new UsageError('--fhir is required unless --no-prefetch');
      // Templates come from the service's discovery entry, as an EHR that reads discovery would.
      const disc = await bearerFor({ ...opts, aud: undefined, variant: undefined }, `${base}/cds-services`);
      const d = await discover(base, disc.bearer, { timeoutMs });
      discovery = { status: d.status, errors: d.errors };
      if (d.status < 200 || d.status > 299 || d.errors) {
        return { code: d.status < 200 || d.status > 299 ? 3 : 1, out: { command, stage: 'discovery', ...d } };
      }
      const entry = (d.json.services ?? []).find((s) => s.id === opts.service);
      if (!entry) {
        return {
          code: 1,
          out: {
            command, stage: 'discovery', url: d.url, status: d.status, json: d.json,
            errors: [{ instancePath: '/services', schemaPath: '', keyword: 'service', params: { id: opts.service }, message: `no service with id ${opts.service} in discovery` }],
            elapsedMs: d.elapsedMs,
          },
        };
      }
      const context = { userId: opts.user ?? 'Practitioner/example', encounterId: opts.encounter };
      const pf = await prefetchDetailed(opts.fhir, opts.patient, entry.prefetch ?? {}, context, { timeoutMs });
      prefetch = pf.prefetch;
      prefetchStatus = pf.status;
    }
    const body = patientViewRequest({
      fhirServer: opts.fhir, patientId: opts.patient, userId: opts.user, encounterId: opts.encounter,
      prefetch, accessToken: opts['access-token'], hookInstance: opts['hook-instance'],
    });
    const { bearer, variant } = await bearerFor(opts, serviceUrl(base, opts.service));
    const r = await call(base, opts.service, body, bearer, { timeoutMs });
    return {
      code: exitFor(r) || (r.requestErrors ? 1 : 0),
      out: {
        command, stage: 'call', ...r, tokenVariant: variant, hookInstance: body.hookInstance,
        prefetchSent: prefetch === undefined ? null : Object.keys(prefetch), prefetchStatus, discovery,
      },
    };
  }

  if (command === 'feedback') {
    need(opts, 'base', 'service', 'card', 'outcome');
    let reason;
    if (opts['reason-code'] !== undefined || opts['reason-system'] !== undefined) {
      need(opts, 'reason-code', 'reason-system');
      reason = { code: opts['reason-code'], system: opts['reason-system'] };
      if (opts['reason-display'] !== undefined) reason.display = opts['reason-display'];
    }
    const body = feedbackBody({
      card: opts.card, outcome: opts.outcome, acceptedSuggestions: opts.suggestion ?? [],
      reason, userComment: opts.comment, outcomeTimestamp: opts.timestamp,
    });
    const { bearer, variant } = await bearerFor(opts, `${serviceUrl(opts.base, opts.service)}/feedback`);
    const r = await feedback(opts.base, opts.service, body, bearer, { timeoutMs });
    // A body that fails the schema is still sent (to test the service's checks); exit 1 tells.
    return { code: r.errors ? 1 : exitFor(r), out: { command, ...r, tokenVariant: variant, request: body } };
  }

  throw new UsageError(`unknown command ${command}`); // not reached: checked above
}

export async function main(argv = process.argv.slice(2)) {
  let res;
  try {
    res = await runCli(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n${USAGE}\n`);
      return 2;
    }
    const cause = err.cause ? ` (${err.cause.code ?? err.cause.message})` : '';
    const out = { command: argv[0], error: `${err.name}: ${err.message}${cause}` };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return 4;
  }
  if (res.usage) {
    process.stderr.write(`${USAGE}\n`);
    return res.code;
  }
  process.stdout.write(JSON.stringify(res.out, null, 2) + '\n');
  return res.code;
}

const invokedDirectly = (() => {
  if (!process.argv[1]) return false;
  try {
    return pathToFileURL(realpathSync(process.argv[1])).href === pathToFileURL(realpathSync(fileURLToPath(import.meta.url))).href;
  } catch {
    return false;
  }
})();

if (invokedDirectly) {
  process.exitCode = await main();
}
