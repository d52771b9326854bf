// Self-test of the CDS Hooks client (npm test). Starts, in this process, a small
// HTTP server on 127.0.0.1 that plays a minimal CDS service (discovery, one good
// and one bad service, feedback, 401 without a valid JWT) and a minimal FHIR
// server for prefetch, then exercises the library and the CLI against it.
// Ends with "N passed, N failed"; exit code 0 only when nothing failed.

import { createServer } from 'node:http';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  jwtVerify,
} from 'jose';
import {
  call,
  discover,
  feedback,
  feedbackBody,
  loadIssuer,
  makeIssuer,
  patientViewRequest,
  prefetchFor,
  saveIssuer,
  serviceUrl,
  token,
  validate,
  writeJwks,
} from './client.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLIENT = join(HERE, 'client.mjs');
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// ------------------------------------------------------------------ fixtures

const CARD_UUID = '4e0a3a1e-3283-4575-ab82-028d55fe2719';
const SUGGESTION_UUID = 'e56e1945-20b3-4393-8503-a1a20fd73152';

function goodCard() {
  return {
    uuid: CARD_UUID,
    summary: 'Readmission risk 0.42 (high)',
    detail: '**Top factors**: prior admissions, age.',
    indicator: 'warning',
    source: { label: 'Risk model', url: 'https://example.org/model', topic: { code: 'risk', system: 'https://example.org/topics' } },
    links: [{ label: 'Open app', url: 'https://example.org/launch', type: 'smart', appContext: '{"p":"p1"}' }],
    overrideReasons: [{ code: 'not-relevant', system: 'https://example.org/reasons', display: 'Not relevant' }],
  };
}

function cardWithSuggestion() {
  return {
    ...goodCard(),
    selectionBehavior: 'at-most-one',
    suggestions: [{
      label: 'Order follow-up', uuid: SUGGESTION_UUID, isRecommended: true,
      actions: [{ type: 'create', description: 'Create a follow-up request', resource: { resourceType: 'ServiceRequest', status: 'draft' } }],
    }],
  };
}

const PATIENT = { resourceType: 'Patient', id: 'p1', birthDate: '1950-01-01' };
const PRACTITIONER = { resourceType: 'Practitioner', id: 'example' };
const CONDITIONS = { resourceType: 'Bundle', type: 'searchset', total: 1, entry: [{ resource: { resourceType: 'Condition', id: 'c1' } }] };

// ------------------------------------------------------------------ the in-process CDS service + FHIR server

const trusted = new Map(); // iss -> { jwks } or { jku }
const seen = { calls: [], feedback: [], discoveryAuth: [] };
let base = '';

async function verifyBearer(req, aud) {
  const header = req.headers.authorization ?? '';
  const m = /^Bearer (.+)$/.exec(header);
  if (!m) return { ok: false, reason: 'no bearer token' };
  try {
    const { iss } = decodeJwt(m[1]);
    const protectedHeader = decodeProtectedHeader(m[1]);
    const entry = trusted.get(iss);
    if (!entry) return { ok: false, reason: `untrusted iss ${iss}` };
    let keys;
    if (entry.jku) {
      if (protectedHeader.jku !== entry.jku) return { ok: false, reason: 'jku not allowlisted' };
      keys = createRemoteJWKSet(new URL(entry.jku));
    } else {
      keys = createLocalJWKSet(entry.jwks);
    }
    const { payload } = await jwtVerify(m[1], keys, {
      issuer: iss, audience: aud, algorithms: ['ES384', 'RS384'], requiredClaims: ['iss', 'aud', 'exp', 'iat', 'jti'],
      typ: 'JWT', clockTolerance: 5,
    });
    if (payload.iat > Math.floor(Date.now() / 1000) + 5) return { ok: false, reason: 'iat in the future' };
    return { ok: true, payload };
  } catch (err) {
    return { ok: false, reason: err.code ?? err.message };
  }
}

function send(res, status, body, type = 'application/json') {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

const jwksFiles = new Map(); // path on this server -> file on disk

async function handle(req, res) {
  const url = new URL(req.url, base);
  const path = url.pathname;

  if (req.method === 'GET' && jwksFiles.has(path)) {
    return send(res, 200, await readFile(jwksFiles.get(path), 'utf8'));
  }
  if (req.method === 'GET' && path === '/cds-services') {
    seen.discoveryAuth.push(req.headers.authorization ?? null);
    return send(res, 200, {
      services: [
        {
          hook: 'patient-view', id: 'risk', title: 'Readmission risk', description: 'Shows the latest risk score',
          prefetch: {
            patient: 'Patient/{{context.patientId}}',
            conditions: 'Condition?patient={{context.patientId}}',
            user: '{{context.userId}}',
          },
        },
        { hook: 'patient-view', id: 'bad', description: 'Answers with cards that break the schema' },
        { hook: 'patient-view', id: 'text', description: 'Answers with a body that is not JSON' },
      ],
    });
  }
  const fb = /^\/cds-services\/([^/]+)\/feedback$/.exec(path);
  if (req.method === 'POST' && fb) {
    const auth = await verifyBearer(req, `${base}${path}`);
    if (!auth.ok) return send(res, 401, { error: auth.reason });
    seen.feedback.push(await readBody(req));
    return send(res, 200, undefined);
  }
  const svc = /^\/cds-services\/([^/]+)$/.exec(path);
  if (req.method === 'POST' && svc) {
    const auth = await verifyBearer(req, `${base}${path}`);
    if (!auth.ok) return send(res, 401, { error: auth.reason });
    const body = await readBody(req);
    seen.calls.push({ id: svc[1], body, claims: auth.payload });
    if (svc[1] === 'risk') return send(res, 200, { cards: [goodCard()] });
    if (svc[1] === 'bad') {
      return send(res, 200, { cards: [{ ...goodCard(), summary: 'x'.repeat(141), indicator: 'hard-stop' }] });
    }
    if (svc[1] === 'text') return send(res, 200, 'no cards today', 'text/plain');
    return send(res, 404, { error: 'no such service' });
  }
  if (req.method === 'GET' && path === '/fhir/Practitioner/example') return send(res, 200, PRACTITIONER, 'application/fhir+json');
  if (req.method === 'GET' && path === '/fhir/Patient/p1') return send(res, 200, PATIENT, 'application/fhir+json');
  if (req.method === 'GET' && path.startsWith('/fhir/Patient/')) {
    return send(res, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] }, 'application/fhir+json');
  }
  if (req.method === 'GET' && path === '/fhir/Condition') {
    const found = url.searchParams.get('patient') === 'p1';
    return send(res, 200, found ? CONDITIONS : { resourceType: 'Bundle', type: 'searchset', total: 0 }, 'application/fhir+json');
  }
  return send(res, 404, { error: `no route ${req.method} ${path}` });
}

// ------------------------------------------------------------------ runner

const results = [];

async function test(name, fn) {
  try {
    await fn();
    results.push(true);
    process.stdout.write(`ok - ${name}\n`);
  } catch (err) {
    results.push(false);
    process.stdout.write(`not ok - ${name}\n  ${String(err.stack ?? err).split('\n').slice(0, 6).join('\n  ')}\n`);
  }
}

function runCli(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLIENT, ...args], { timeout: 30000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      let json = null;
      try { json = JSON.parse(stdout); } catch { /* left null */ }
      resolve({ code, json, stdout, stderr });
    });
  });
}

async function rejects(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return true;
  });
}

function hasError(errors, keyword, pathPart) {
  assert.ok(Array.isArray(errors), 'expected schema errors');
  assert.ok(
    errors.some((e) => e.keyword === keyword && e.instancePath.includes(pathPart)),
    `no ${keyword} error at ${pathPart}: ${JSON.stringify(errors)}`,
  );
}

// ------------------------------------------------------------------ tests

const server = createServer((req, res) => {
  handle(req, res).catch((err) => send(res, 500, { error: err.message }));
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
base = `http://127.0.0.1:${server.address().port}`;
const fhir = `${base}/fhir`;
const tmp = await mkdtemp(join(tmpdir(), 'cds-client-'));

try {
  const issuers = {};

  for (const alg of ['ES384', 'RS384']) {
    await test(`${alg}: makeIssuer gives a public-only JWKS with kid and alg`, async () => {
      const iss = `https://ehr.test/${alg.toLowerCase()}`;
      const issuer = await makeIssuer({ alg, iss, kid: `kid-${alg}` });
      issuers[alg] = issuer;
      assert.equal(issuer.iss, iss);
      assert.equal(issuer.alg, alg);
      assert.equal(issuer.jwks.keys.length, 1);
      const [k] = issuer.jwks.keys;
      assert.equal(k.kid, `kid-${alg}`);
      assert.equal(k.alg, alg);
      assert.equal(k.kty, alg === 'ES384' ? 'EC' : 'RSA');
      if (alg === 'ES384') assert.equal(k.crv, 'P-384');
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(k[secret], undefined, `public JWK has ${secret}`);
      assert.ok(issuer.privateJwk.d, 'private JWK lacks d');
    });

    await test(`${alg}: token verifies with jose against the written JWKS (iss, aud, exp)`, async () => {
      const issuer = issuers[alg];
      const path = join(tmp, `jwks-${alg}.json`);
      await writeJwks(issuer, path);
      const jwks = createLocalJWKSet(JSON.parse(await readFile(path, 'utf8')));
      const aud = serviceUrl(base, 'risk');
      const jwt = await token(issuer, { aud, sub: 'client-1' });
      const { payload, protectedHeader } = await jwtVerify(jwt, jwks, { issuer: issuer.iss, audience: aud, algorithms: [alg], typ: 'JWT' });
      assert.deepEqual(protectedHeader, { alg, kid: issuer.kid, typ: 'JWT' });
      assert.equal(payload.iss, issuer.iss);
      assert.equal(payload.aud, aud);
      assert.equal(payload.sub, 'client-1');
      assert.equal(payload.exp - payload.iat, 300);
      assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 5, 'iat is not now');
      assert.match(payload.jti, UUID_RE);
      const again = decodeJwt(await token(issuer, { aud }));
      assert.notEqual(again.jti, payload.jti, 'jti repeats');
    });

    await test(`${alg}: expired, wrong aud, wrong iss, bad signature and unknown kid fail verification`, async () => {
      const issuer = issuers[alg];
      const jwks = createLocalJWKSet(issuer.jwks);
      const aud = serviceUrl(base, 'risk');
      const opts = { issuer: issuer.iss, audience: aud, algorithms: [alg] };
      await rejects(jwtVerify(await token(issuer, { aud, expired: true }), jwks, opts), 'ERR_JWT_EXPIRED');
      await rejects(jwtVerify(await token(issuer, { aud, variant: 'wrong-aud' }), jwks, opts), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
      await rejects(jwtVerify(await token(issuer, { aud: `${base}/cds-services/other` }), jwks, opts), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
      await rejects(jwtVerify(await token(issuer, { aud, variant: 'wrong-iss' }), jwks, opts), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
      const forged = await token(issuer, { aud, badSignature: true });
      assert.equal(decodeProtectedHeader(forged).kid, issuer.kid, 'bad-signature token changed kid');
      await rejects(jwtVerify(forged, jwks, opts), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
      await rejects(jwtVerify(await token(issuer, { aud, variant: 'unknown-kid' }), jwks, opts), 'ERR_JWKS_NO_MATCHING_KEY');
      const none = await token(issuer, { aud, variant: 'alg-none' });
      assert.equal(decodeProtectedHeader(none).alg, 'none');
      assert.equal(decodeJwt(await token(issuer, { aud, variant: 'no-jti' })).jti, undefined);
      assert.equal(decodeJwt(await token(issuer, { aud, omit: ['iat'] })).iat, undefined);
    });
  }

  await test('saveIssuer/loadIssuer round trip keeps a working key; jku goes in the header', async () => {
    const issuer = await makeIssuer({ alg: 'ES384', iss: 'https://ehr.test/jku', jku: `${base}/jwks/es.json` });
    const dir = join(tmp, 'saved');
    const files = await saveIssuer(issuer, dir);
    assert.equal((await stat(files.privateJwk)).mode & 0o777, 0o600);
    const loaded = await loadIssuer(dir);
    assert.equal(loaded.kid, issuer.kid);
    const jwt = await token(loaded, { aud: 'https://svc.test/cds-services/risk' });
    assert.equal(decodeProtectedHeader(jwt).jku, `${base}/jwks/es.json`);
    jwksFiles.set('/jwks/es.json', files.jwks);
    const remote = createRemoteJWKSet(new URL(`${base}/jwks/es.json`));
    await jwtVerify(jwt, remote, { issuer: issuer.iss, audience: 'https://svc.test/cds-services/risk' });
  });

  // ---------------------------------------------------------------- schemas

  await test('schema: a valid card response (with suggestions and systemActions) is accepted', async () => {
    assert.equal(validate('response', { cards: [goodCard()] }), null);
    assert.equal(validate('response', { cards: [] }), null);
    assert.equal(validate('response', {
      cards: [cardWithSuggestion()],
      systemActions: [{ type: 'update', resource: { resourceType: 'ServiceRequest', id: 's1' } }],
    }), null);
    assert.equal(validate('card', { summary: 'x'.repeat(140), indicator: 'critical', source: { label: 'L' } }), null);
  });

  await test('schema: summary over 140 characters is rejected', async () => {
    hasError(validate('response', { cards: [{ ...goodCard(), summary: 'x'.repeat(141) }] }), 'maxLength', '/cards/0/summary');
  });

  await test('schema: indicator "hard-stop" is rejected', async () => {
    hasError(validate('response', { cards: [{ ...goodCard(), indicator: 'hard-stop' }] }), 'enum', '/cards/0/indicator');
  });

  await test('schema: missing source.label is rejected', async () => {
    hasError(validate('response', { cards: [{ ...goodCard(), source: { url: 'https://example.org' } }] }), 'required', '/cards/0/source');
    hasError(validate('card', { summary: 's', indicator: 'info' }), 'required', '');
  });

  await test('schema: other card faults are rejected (cds-resp-5, cds-resp-6, links, uuid, unknown field, no cards)', async () => {
    const { selectionBehavior, ...noBehavior } = cardWithSuggestion();
    assert.ok(selectionBehavior);
    hasError(validate('card', noBehavior), 'required', '');
    const noDescription = cardWithSuggestion();
    delete noDescription.suggestions[0].actions[0].description;
    hasError(validate('card', noDescription), 'required', '/suggestions/0/actions/0');
    hasError(validate('card', { ...goodCard(), links: [{ label: 'l', url: 'https://x.test', type: 'relative' }] }), 'enum', '/links/0/type');
    hasError(validate('card', { ...goodCard(), links: [{ label: 'l', url: 'https://x.test', type: 'absolute', appContext: 'x' }] }), 'not', '/links/0');
    hasError(validate('card', { ...goodCard(), uuid: 'not-a-uuid' }), 'pattern', '/uuid');
    hasError(validate('card', { ...goodCard(), sumary: 'typo' }), 'additionalProperties', '');
    hasError(validate('response', {}), 'required', '');
  });

  await test('schema: discovery accepts services and rejects a service without description', async () => {
    assert.equal(validate('discovery', { services: [] }), null);
    assert.equal(validate('discovery', { services: [{ hook: 'patient-view', id: 'risk', description: 'd', prefetch: { p: 'Patient/{{context.patientId}}' }, usageRequirements: 'u' }] }), null);
    hasError(validate('discovery', { services: [{ hook: 'patient-view', id: 'risk' }] }), 'required', '/services/0');
    hasError(validate('discovery', { services: [{ hook: 'patient-view', id: 'a/b', description: 'd' }] }), 'pattern', '/services/0/id');
  });

  await test('schema: patientViewRequest builds a valid request; broken requests are rejected', async () => {
    const body = patientViewRequest({ fhirServer: fhir, patientId: 'p1', userId: 'x', accessToken: 'abc', prefetch: { patient: PATIENT, gone: null } });
    assert.equal(validate('request', body), null);
    assert.equal(body.hook, 'patient-view');
    assert.match(body.hookInstance, UUID_RE);
    assert.deepEqual(body.context, { userId: 'Practitioner/x', patientId: 'p1' });
    assert.equal(body.fhirAuthorization.token_type, 'Bearer');
    const noPrefetch = patientViewRequest({ fhirServer: fhir, patientId: 'p1' });
    assert.equal('prefetch' in noPrefetch, false);
    hasError(validate('request', { ...body, fhirAuthorization: { ...body.fhirAuthorization, token_type: 'bearer' } }), 'const', '/fhirAuthorization/token_type');
    const { fhirServer, ...noServer } = body;
    assert.ok(fhirServer);
    hasError(validate('request', noServer), 'required', '');
    hasError(validate('request', { ...body, context: { patientId: 'p1' } }), 'required', '/context');
    hasError(validate('request', { ...body, context: { userId: 'Device/1', patientId: 'p1' } }), 'pattern', '/context/userId');
  });

  await test('schema: feedback accepts the spec shapes and enforces cds-fb-1/2/3', async () => {
    assert.equal(validate('feedback', feedbackBody({ card: CARD_UUID, outcome: 'accepted', acceptedSuggestions: [SUGGESTION_UUID] })), null);
    assert.equal(validate('feedback', feedbackBody({ card: CARD_UUID, outcome: 'overridden' })), null);
    assert.equal(validate('feedback', feedbackBody({ card: CARD_UUID, outcome: 'overridden', userComment: 'n/a', reason: { code: 'c', system: 's' } })), null);
    hasError(validate('feedback', feedbackBody({ card: CARD_UUID, outcome: 'ignored' })), 'enum', '/feedback/0/outcome');
    hasError(validate('feedback', feedbackBody({ card: CARD_UUID, outcome: 'accepted' })), 'required', '/feedback/0');
    hasError(validate('feedback', { feedback: [{ card: CARD_UUID, outcome: 'overridden', overrideReason: {}, outcomeTimestamp: '2020-12-11T00:00:00Z' }] }), 'required', '/feedback/0/overrideReason');
    hasError(validate('feedback', feedbackBody({ card: CARD_UUID, outcome: 'overridden', outcomeTimestamp: '2020-12-11 00:00' })), 'pattern', '/feedback/0/outcomeTimestamp');
    hasError(validate('feedback', { feedback: [] }), 'minItems', '/feedback');
  });

  // ---------------------------------------------------------------- HTTP, library

  trusted.set(issuers.ES384.iss, { jwks: issuers.ES384.jwks });
  trusted.set(issuers.RS384.iss, { jwks: issuers.RS384.jwks });

  await test('discover: 200 and a body that passes the discovery schema', async () => {
    const r = await discover(base);
    assert.equal(r.status, 200);
    assert.equal(r.errors, null);
    assert.equal(r.json.services[0].id, 'risk');
    assert.equal(r.url, `${base}/cds-services`);
  });

  await test('prefetchFor: fills {{context.patientId}}, fetches, a 404 becomes null', async () => {
    const templates = { patient: 'Patient/{{context.patientId}}', conditions: 'Condition?patient={{context.patientId}}' };
    assert.deepEqual(await prefetchFor(fhir, 'p1', templates), { patient: PATIENT, conditions: CONDITIONS });
    const missing = await prefetchFor(`${fhir}/`, 'nobody', templates);
    assert.equal(missing.patient, null);
    assert.equal(missing.conditions.total, 0);
    assert.deepEqual(await prefetchFor(fhir, 'p1', { enc: 'Encounter/{{context.encounterId}}' }), {});
  });

  await test('call: no token → 401; expired or forged token → 401', async () => {
    const body = patientViewRequest({ fhirServer: fhir, patientId: 'p1' });
    const aud = serviceUrl(base, 'risk');
    assert.equal((await call(base, 'risk', body, null)).status, 401);
    assert.equal((await call(base, 'risk', body, await token(issuers.ES384, { aud, expired: true }))).status, 401);
    assert.equal((await call(base, 'risk', body, await token(issuers.ES384, { aud, badSignature: true }))).status, 401);
    assert.equal((await call(base, 'risk', body, await token(issuers.RS384, { aud: `${base}/cds-services` }))).status, 401);
    const r = await call(base, 'risk', body, await token(issuers.ES384, { aud, variant: 'alg-none' }));
    assert.equal(r.status, 401);
    assert.equal(r.errors, null, 'a non-2xx body is not schema-checked');
  });

  for (const alg of ['ES384', 'RS384']) {
    await test(`call (${alg}): 200 with a card that passes the schema; the service saw the request`, async () => {
      const prefetch = await prefetchFor(fhir, 'p1', { patient: 'Patient/{{context.patientId}}' });
      const body = patientViewRequest({ fhirServer: fhir, patientId: 'p1', prefetch });
      const r = await call(base, 'risk', body, await token(issuers[alg], { aud: serviceUrl(base, 'risk') }));
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.errors, null);
      assert.equal(r.requestErrors, null);
      assert.equal(r.json.cards[0].uuid, CARD_UUID);
      const last = seen.calls.at(-1);
      assert.equal(last.body.hookInstance, body.hookInstance);
      assert.deepEqual(last.body.prefetch, { patient: PATIENT });
      assert.equal(last.claims.iss, issuers[alg].iss);
    });
  }

  await test('call: a service answering bad cards gives schema errors; a non-JSON 200 too', async () => {
    const body = patientViewRequest({ fhirServer: fhir, patientId: 'p1' });
    const r = await call(base, 'bad', body, await token(issuers.ES384, { aud: serviceUrl(base, 'bad') }));
    assert.equal(r.status, 200);
    hasError(r.errors, 'maxLength', '/cards/0/summary');
    hasError(r.errors, 'enum', '/cards/0/indicator');
    const t = await call(base, 'text', body, await token(issuers.ES384, { aud: serviceUrl(base, 'text') }));
    assert.equal(t.status, 200);
    assert.equal(t.json, null);
    assert.equal(t.text, 'no cards today');
    hasError(t.errors, 'json', '');
  });

  await test('feedback: 200 with aud {service}/feedback; the service got the body', async () => {
    const body = feedbackBody({ card: CARD_UUID, outcome: 'accepted', acceptedSuggestions: [SUGGESTION_UUID] });
    const aud = `${serviceUrl(base, 'risk')}/feedback`;
    const r = await feedback(base, 'risk', body, await token(issuers.RS384, { aud }));
    assert.equal(r.status, 200);
    assert.equal(r.errors, null);
    assert.equal(r.json, null);
    assert.deepEqual(seen.feedback.at(-1), body);
    assert.equal((await feedback(base, 'risk', body, await token(issuers.RS384, { aud: serviceUrl(base, 'risk') }))).status, 401);
  });

  // ---------------------------------------------------------------- CLI

  const cliDir = join(tmp, 'cli-issuer');
  const cliIss = 'https://ehr.test/cli';

  await test('CLI issuer: writes issuer.json, private.jwk.json and jwks.json; prints them', async () => {
    const r = await runCli(['issuer', '--alg', 'RS384', '--iss', cliIss, '--kid', 'cli-kid', '--out', cliDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.command, 'issuer');
    assert.equal(r.json.alg, 'RS384');
    assert.equal(r.json.kid, 'cli-kid');
    assert.equal(r.json.jku, null);
    assert.deepEqual(Object.keys(r.json.files).sort(), ['issuer', 'jwks', 'privateJwk']);
    const jwks = JSON.parse(await readFile(join(cliDir, 'jwks.json'), 'utf8'));
    assert.deepEqual(jwks, r.json.jwks);
    assert.equal(jwks.keys[0].d, undefined);
    trusted.set(cliIss, { jwks });
  });

  await test('CLI token: prints a JWT that verifies against the written JWKS', async () => {
    const aud = serviceUrl(base, 'risk');
    const r = await runCli(['token', '--issuer', cliDir, '--aud', aud]);
    assert.equal(r.code, 0, r.stderr);
    const jwks = createLocalJWKSet(JSON.parse(await readFile(join(cliDir, 'jwks.json'), 'utf8')));
    const { payload } = await jwtVerify(r.json.token, jwks, { issuer: cliIss, audience: aud });
    assert.deepEqual(r.json.claims, payload);
    assert.equal(r.json.header.kid, 'cli-kid');
    const expired = await runCli(['token', '--issuer', cliDir, '--aud', aud, '--variant', 'expired']);
    await rejects(jwtVerify(expired.json.token, jwks, { issuer: cliIss, audience: aud }), 'ERR_JWT_EXPIRED');
  });

  await test('CLI call: exit 0, prefetch from discovery templates, stable JSON keys', async () => {
    const before = seen.discoveryAuth.length;
    const r = await runCli(['call', '--base', base, '--service', 'risk', '--issuer', cliDir, '--patient', 'p1', '--fhir', fhir]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(Object.keys(r.json), [
      'command', 'stage', 'url', 'status', 'json', 'errors', 'elapsedMs', 'requestErrors', 'tokenVariant',
      'hookInstance', 'prefetchSent', 'prefetchStatus', 'discovery',
    ]);
    assert.equal(r.json.command, 'call');
    assert.equal(r.json.stage, 'call');
    assert.equal(r.json.status, 200);
    assert.equal(r.json.errors, null);
    assert.equal(r.json.tokenVariant, 'valid');
    assert.deepEqual(r.json.prefetchSent, ['patient', 'conditions', 'user']);
    assert.deepEqual(r.json.prefetchStatus, { patient: 200, conditions: 200, user: 200 });
    assert.deepEqual(r.json.discovery, { status: 200, errors: null });
    assert.equal(seen.discoveryAuth.length, before + 1);
    const disc = decodeJwt(seen.discoveryAuth.at(-1).slice('Bearer '.length));
    assert.equal(disc.aud, `${base}/cds-services`);
    const last = seen.calls.at(-1);
    assert.equal(last.body.hookInstance, r.json.hookInstance);
    assert.deepEqual(last.body.prefetch, { patient: PATIENT, conditions: CONDITIONS, user: PRACTITIONER });
    assert.equal(last.claims.aud, serviceUrl(base, 'risk'));
  });

  await test('CLI call --no-prefetch: no discovery, no prefetch key sent', async () => {
    const before = seen.discoveryAuth.length;
    const r = await runCli(['call', '--base', base, '--service', 'risk', '--issuer', cliDir, '--patient', 'p1', '--fhir', fhir, '--no-prefetch']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.json.prefetchSent, null);
    assert.equal(r.json.prefetchStatus, null);
    assert.equal(r.json.discovery, null);
    assert.equal(seen.discoveryAuth.length, before);
    assert.equal('prefetch' in seen.calls.at(-1).body, false);
  });

  await test('CLI call: schema errors exit 1; 401 exits 3; usage exits 2; refused connection exits 4', async () => {
    const bad = await runCli(['call', '--base', base, '--service', 'bad', '--issuer', cliDir, '--patient', 'p1', '--no-prefetch']);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    hasError(bad.json.errors, 'maxLength', '/cards/0/summary');
    for (const variant of ['expired', 'bad-signature', 'wrong-aud', 'unknown-kid', 'alg-none', 'no-jti']) {
      const r = await runCli(['call', '--base', base, '--service', 'risk', '--issuer', cliDir, '--patient', 'p1', '--fhir', fhir, '--variant', variant]);
      assert.equal(r.code, 3, `${variant}: ${r.stdout}`);
      assert.equal(r.json.status, 401, variant);
      assert.equal(r.json.tokenVariant, variant);
      assert.equal(r.json.errors, null);
    }
    const none = await runCli(['call', '--base', base, '--service', 'risk', '--patient', 'p1', '--no-prefetch']);
    assert.equal(none.code, 3);
    assert.equal(none.json.tokenVariant, null);
    const usage = await runCli(['call', '--base', base]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--service is required/);
    const typo = await runCli(['call', '--base', base, '--servce', 'risk', '--patient', 'p1']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /unknown option --servce/);
    assert.equal(typo.stdout, '');
    assert.equal((await runCli(['issuer', '--alg', 'HS256', '--iss', cliIss, '--out', join(tmp, 'hs')])).code, 2);
    const refused = await runCli(['call', '--base', 'http://127.0.0.1:9', '--service', 'risk', '--patient', 'p1', '--no-prefetch', '--timeout', '3000']);
    assert.equal(refused.code, 4, refused.stdout);
    assert.match(refused.json.error, /fetch failed/);
  });

  await test('CLI discover and feedback', async () => {
    const d = await runCli(['discover', '--base', base]);
    assert.equal(d.code, 0, d.stdout);
    assert.equal(d.json.json.services.length, 3);
    const f = await runCli(['feedback', '--base', base, '--service', 'risk', '--issuer', cliDir, '--card', CARD_UUID,
      '--outcome', 'overridden', '--reason-code', 'not-relevant', '--reason-system', 'https://example.org/reasons', '--comment', 'seen']);
    assert.equal(f.code, 0, f.stdout);
    assert.equal(f.json.status, 200);
    assert.deepEqual(seen.feedback.at(-1), f.json.request);
    assert.equal(f.json.request.feedback[0].overrideReason.userComment, 'seen');
    const wrong = await runCli(['feedback', '--base', base, '--service', 'risk', '--issuer', cliDir, '--card', CARD_UUID, '--outcome', 'accepted']);
    assert.equal(wrong.code, 1, 'accepted without suggestions must fail the schema');
    hasError(wrong.json.errors, 'required', '/feedback/0');
  });

  await test('CLI validate: a file checked against a named schema', async () => {
    const { writeFile } = await import('node:fs/promises');
    const path = join(tmp, 'resp.json');
    await writeFile(path, JSON.stringify({ cards: [{ ...goodCard(), indicator: 'hard-stop' }] }));
    const r = await runCli(['validate', '--schema', 'response', '--file', path]);
    assert.equal(r.code, 1);
    hasError(r.json.errors, 'enum', '/cards/0/indicator');
  });
} finally {
  server.closeAllConnections();
  server.close();
  await rm(tmp, { recursive: true, force: true });
}

const passed = results.filter(Boolean).length;
const failed = results.length - passed;
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
