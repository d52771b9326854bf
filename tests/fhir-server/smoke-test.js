'use strict';
// Self-check of the FHIR test server: starts it on a free port, exercises the behaviour the
// adapter relies on, stops it. Usage: node smoke-test.js   (exit code 0 when every check passes)

const { spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');
const { generateWithStats } = require('./generate.js');

// The Subscription contract as a client sees it (README.md, "Subscriptions").
const TOPIC_URL = 'http://fhir-risk-adapter.test/SubscriptionTopic/clinical-data';
const FILTER_CRITERIA_URL = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria';
const PAYLOAD_CONTENT_URL = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content';

const PATIENTS = 200;
const SEED = 42;
let passed = 0;
let failed = 0;

function check(name, ok, detail = '') {
  if (ok) {
    passed++;
    process.stdout.write(`ok   ${name}${detail ? ` (${detail})` : ''}\n`);
  } else {
    failed++;
    process.stdout.write(`FAIL ${name}${detail ? ` (${detail})` : ''}\n`);
  }
}

function startServer(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'server.js'), '--port', '0', ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not become ready in 60 s')), 60000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /fhir-test-server listening on (\S+) \((\d+) patients\)\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, base: m[1], line: m[0].trim() });
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

function stopServer(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode }); // it died already: no exit event to wait for
      return;
    }
    child.removeAllListeners('exit');
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.kill('SIGTERM');
  });
}

async function req(url, init) {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

const json = (method, body) => ({ method, headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(body) });
const nextLink = (bundle) => bundle.link?.find((l) => l.relation === 'next')?.url;

async function walk(url) {
  const resources = [];
  let pages = 0;
  let slowest = 0;
  while (url) {
    const t = Date.now();
    const page = await req(url);
    slowest = Math.max(slowest, Date.now() - t);
    if (page.status !== 200) {
      throw new Error(`page ${url} answered ${page.status}`);
    }
    resources.push(...(page.body.entry ?? []).map((e) => e.resource));
    url = nextLink(page.body);
    pages++;
  }
  return { resources, pages, slowest };
}

async function main() {
  const { stats } = generateWithStats({ patients: PATIENTS, seed: SEED });
  const t0 = Date.now();
  const { child, base, line } = await startServer(['--patients', String(PATIENTS), '--seed', String(SEED)]);
  check('ready line', /^fhir-test-server listening on http:\/\/127\.0\.0\.1:\d+\/fhir\/R4 \(200 patients\)$/.test(line), `${Date.now() - t0} ms`);
  try {
    const meta = await req(`${base}/metadata`);
    check('metadata', meta.status === 200 && meta.body.resourceType === 'CapabilityStatement' && meta.headers.get('content-type') === 'application/fhir+json');

    const t1 = Date.now();
    const w = await walk(`${base}/Observation?_lastUpdated=ge2000-01-01T00:00:00Z&_sort=_lastUpdated&_count=500`);
    const ids = new Set(w.resources.map((r) => r.id));
    check('observation walk complete', w.resources.length === stats.observations && ids.size === stats.observations,
      `${w.resources.length} in ${w.pages} pages, ${Date.now() - t1} ms, slowest page ${w.slowest} ms`);
    let ordered = true;
    for (let i = 1; i < w.resources.length; i++) {
      const a = w.resources[i - 1];
      const b = w.resources[i];
      if (a.meta.lastUpdated > b.meta.lastUpdated || (a.meta.lastUpdated === b.meta.lastUpdated && a.id > b.id)) {
        ordered = false;
      }
    }
    check('walk sorted by _lastUpdated then id', ordered);
    check('pages well under a second', w.slowest < 1000, `${w.slowest} ms`);
    check('subjects are Patient/<id>', w.resources.every((r) => /^Patient\/[0-9a-f-]{36}$/.test(r.subject.reference)));

    const mid = w.resources[Math.floor(w.resources.length / 2)].meta.lastUpdated;
    const ge = await req(`${base}/Observation?_lastUpdated=ge${mid}&_summary=count`);
    check('_lastUpdated=ge', ge.body.total === w.resources.filter((r) => r.meta.lastUpdated >= mid).length, `${ge.body.total}`);

    const count = await req(`${base}/Patient?_summary=count`);
    check('_summary=count', count.body.total === PATIENTS && !count.body.entry);

    const patientId = w.resources[0].subject.reference.split('/')[1];
    const ra = (p) => ({
      resourceType: 'RiskAssessment',
      identifier: [{ system: 'urn:smoke-test', value: 'ra-1' }],
      status: 'final',
      subject: { reference: `Patient/${patientId}` },
      prediction: [{ probabilityDecimal: p }],
    });
    const condUrl = `${base}/RiskAssessment?identifier=${encodeURIComponent('urn:smoke-test|ra-1')}`;
    const c1 = await req(condUrl, json('PUT', ra(0.1)));
    const c2 = await req(condUrl, json('PUT', ra(0.6)));
    const found = await req(condUrl);
    check('conditional update creates then updates', c1.status === 201 && c2.status === 200 && c1.body.id === c2.body.id &&
      found.body.total === 1 && found.body.entry[0].resource.prediction[0].probabilityDecimal === 0.6, `${c1.status} then ${c2.status}`);
    await req(`${base}/RiskAssessment`, json('POST', { ...ra(0.2), identifier: [{ system: 'urn:smoke-test', value: 'dup' }] }));
    await req(`${base}/RiskAssessment`, json('POST', { ...ra(0.3), identifier: [{ system: 'urn:smoke-test', value: 'dup' }] }));
    const multi = await req(`${base}/RiskAssessment?identifier=${encodeURIComponent('urn:smoke-test|dup')}`, json('PUT', ra(0.4)));
    check('conditional update with several matches', multi.status === 412 && multi.body.resourceType === 'OperationOutcome');
    const ras = await req(`${base}/RiskAssessment?_count=2`);
    check('RiskAssessment paging', ras.body.total === 3 && ras.body.entry.length === 2 && !!nextLink(ras.body));

    const unknownType = await req(`${base}/Foo`);
    check('unknown resource type 404', unknownType.status === 404 && unknownType.body.resourceType === 'OperationOutcome');
    const unknownParam = await req(`${base}/Observation?bogus=1`);
    check('unknown search parameter 400', unknownParam.status === 400 && unknownParam.body.resourceType === 'OperationOutcome');
    const invalid = await req(`${base}/RiskAssessment`, json('POST', { resourceType: 'RiskAssessment', subject: { reference: `Patient/${patientId}` } }));
    check('invalid resource 400', invalid.status === 400);
  } finally {
    const exit = await stopServer(child);
    check('clean exit on SIGTERM', exit.code === 0, JSON.stringify(exit));
  }

  const faulty = await startServer(['--patients', '5', '--fault-rate', '0.5']);
  try {
    const statuses = [];
    let retryAfter = true;
    for (let i = 0; i < 40; i++) {
      const r = await req(`${faulty.base}/Patient?_count=1`);
      statuses.push(r.status);
      if (r.status !== 200) {
        retryAfter &&= r.headers.get('retry-after') === '1' && r.body.resourceType === 'OperationOutcome';
      }
    }
    const faults = statuses.filter((s) => s === 429 || s === 503).length;
    check('fault injection', faults > 5 && faults < 35 && statuses.every((s) => [200, 429, 503].includes(s)) && retryAfter, `${faults}/40 faulted`);
  } finally {
    await stopServer(faulty.child);
  }

  await subscriptionChecks();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls `pred` (sync or async) until it returns something truthy or `ms` pass; returns its last value.
async function waitFor(pred, ms = 2000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await pred();
    if (value || Date.now() >= end) return value;
    await sleep(20);
  }
}

// A local rest-hook endpoint that records every request. `/flaky` answers 500 to its first
// request, `/refuse` always 401; `/slow` answers after 1.5 s.
function startHook() {
  const received = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (d) => (body += d));
    request.on('end', () => {
      const hit = { path: request.url, method: request.method, headers: request.headers, body, at: Date.now(), status: 200 };
      if (request.url === '/flaky' && !received.some((h) => h.path === '/flaky')) hit.status = 500;
      if (request.url === '/refuse') hit.status = 401;
      received.push(hit);
      setTimeout(() => response.writeHead(hit.status).end(), request.url === '/slow' ? 1500 : 0);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${server.address().port}`, received })));
}

const subscription = (criteria, channel, extra = {}) => ({
  resourceType: 'Subscription',
  status: 'requested',
  reason: 'smoke test',
  criteria,
  channel: { type: 'rest-hook', ...channel },
  ...extra,
});
const observation = (category, code = '8867-4') => ({
  resourceType: 'Observation',
  status: 'final',
  ...(category ? { category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: category }] }] } : undefined),
  code: { coding: [{ system: 'http://loinc.org', code }] },
  subject: { reference: 'Patient/smoke' },
  valueQuantity: { value: 80, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
});
// The SubscriptionStatus parameters of a backport notification, by name.
function statusParams(bundle) {
  const params = Object.fromEntries(bundle.entry[0].resource.parameter.map((p) => [p.name, p]));
  const event = Object.fromEntries((params['notification-event']?.part ?? []).map((p) => [p.name, p]));
  return { params, event };
}

async function subscriptionChecks() {
  const hook = await startHook();
  const { child, base } = await startServer(['--patients', '2']);
  const admin = `${base.replace(/\/fhir\/R4$/, '')}/admin/notifications`;
  const hits = (path) => hook.received.filter((h) => h.path === path);
  const post = (type, body) => req(`${base}/${type}`, json('POST', body));
  try {
    const meta = await req(`${base}/metadata`);
    const subEntry = meta.body.rest[0].resource.find((r) => r.type === 'Subscription');
    check('metadata advertises the backport topic', subEntry.extension?.some((e) => e.valueCanonical === TOPIC_URL) &&
      subEntry.supportedProfile?.[0]?.endsWith('/backport-subscription'));

    const rejected = await Promise.all([
      subscription('Observation', { type: 'websocket' }),
      subscription('Observation?bogus=1', { endpoint: `${hook.url}/x` }),
      subscription('Observation?_count=1', { endpoint: `${hook.url}/x` }),
      subscription('http://example.org/SubscriptionTopic/unknown', { endpoint: `${hook.url}/x` }),
      subscription('Observation', { endpoint: 'ftp://example.org/x' }),
      subscription('Observation', { endpoint: `${hook.url}/x`, header: ['no colon'] }),
      subscription('Observation', { endpoint: `${hook.url}/x`, payload: 'application/fhir+xml' }),
    ].map((s) => post('Subscription', s)));
    check('unsupported Subscriptions answer 400', rejected.every((r) => r.status === 400 && r.body.resourceType === 'OperationOutcome'),
      rejected.map((r) => r.status).join(' '));

    // R4, no payload: an empty POST with the channel headers, only for matching resources.
    const plain = await post('Subscription', subscription('Observation?category=vital-signs', {
      endpoint: `${hook.url}/plain`, header: ['Authorization: Bearer smoke-secret', 'X-Smoke: 1'] }));
    check('Subscription stored active', plain.status === 201 && plain.body.status === 'active', `${plain.status} ${plain.body.status}`);
    await post('Observation', observation('laboratory'));
    const t0 = Date.now();
    await post('Observation', observation('vital-signs'));
    const first = await waitFor(() => hits('/plain')[0]);
    check('R4 notification within 2 s: empty POST with the channel headers', first?.method === 'POST' && first.body === '' &&
      first.headers.authorization === 'Bearer smoke-secret' && first.headers['x-smoke'] === '1', first ? `${first.at - t0} ms` : 'none');
    await sleep(300);
    check('criteria parameters filter what is notified', hits('/plain').length === 1, `${hits('/plain').length} notifications`);

    // R4, payload application/fhir+json: a history Bundle for each create, update and delete.
    await post('Subscription', subscription('Patient', { endpoint: `${hook.url}/full`, payload: 'application/fhir+json' }));
    const patient = await post('Patient', { resourceType: 'Patient', name: [{ family: 'Smoke' }] });
    await req(`${base}/Patient/${patient.body.id}`, json('PUT', { ...patient.body, gender: 'other' }));
    await req(`${base}/Patient/${patient.body.id}`, { method: 'DELETE' });
    await waitFor(() => hits('/full').length >= 3);
    const full = hits('/full').map((h) => JSON.parse(h.body));
    check('R4 payload: history Bundles for create, update, delete', full.length === 3 &&
      full.every((b) => b.resourceType === 'Bundle' && b.type === 'history' && b.entry.length === 1) &&
      full.map((b) => b.entry[0].request.method).join() === 'POST,PUT,DELETE' &&
      full[0].entry[0].resource.id === patient.body.id && full[1].entry[0].resource.gender === 'other' && !full[2].entry[0].resource &&
      hits('/full')[0].headers['content-type'] === 'application/fhir+json', full.map((b) => b.entry?.[0]?.request?.method).join());

    // Delivery is asynchronous: a slow endpoint does not slow the write.
    const slow = await post('Subscription', subscription('Encounter', { endpoint: `${hook.url}/slow` }));
    const t1 = Date.now();
    const encounter = await post('Encounter', { resourceType: 'Encounter', status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, subject: { reference: 'Patient/smoke' } });
    const took = Date.now() - t1;
    check('notification never delays the write', encounter.status === 201 && took < 500 && !!(await waitFor(() => hits('/slow')[0])), `${took} ms`);
    await req(`${base}/Subscription/${slow.body.id}`, { method: 'DELETE' });

    // A failed delivery is retried.
    await post('Subscription', subscription('Observation?code=http://loinc.org|9279-1', { endpoint: `${hook.url}/flaky` }));
    await post('Observation', observation(undefined, '9279-1'));
    await waitFor(() => hits('/flaky').length >= 2);
    check('failed delivery retried', hits('/flaky').map((h) => h.status).join() === '500,200', hits('/flaky').map((h) => h.status).join());
    await post('Subscription', subscription('Observation?code=http://loinc.org|59408-5', { endpoint: `${hook.url}/refuse` }));
    await post('Observation', observation(undefined, '59408-5'));
    await waitFor(() => hits('/refuse').length >= 1);
    await sleep(600);
    check('a 401 is not retried', hits('/refuse').length === 1, `${hits('/refuse').length} attempts`);

    // Backport (topic-based) Subscriptions: empty, id-only and full-resource content.
    const backport = (content, filter) => subscription(TOPIC_URL, {
      endpoint: `${hook.url}/${content}`, payload: 'application/fhir+json',
      _payload: { extension: [{ url: PAYLOAD_CONTENT_URL, valueCode: content }] },
    }, filter ? { _criteria: { extension: [{ url: FILTER_CRITERIA_URL, valueString: filter }] } } : {});
    const bFull = await post('Subscription', backport('full-resource', 'Observation?category=vital-signs'));
    const bId = await post('Subscription', backport('id-only'));
    await post('Subscription', backport('empty'));
    check('backport Subscriptions stored active', bFull.body.status === 'active' && bId.body.status === 'active');
    const vital = await post('Observation', observation('vital-signs'));
    await post('Observation', observation('laboratory'));
    await waitFor(() => hits('/id-only').length >= 2 && hits('/empty').length >= 2);
    await sleep(200);
    const [bf] = hits('/full-resource').map((h) => JSON.parse(h.body));
    const bfs = bf && statusParams(bf);
    check('backport full-resource: SubscriptionStatus then the resource', hits('/full-resource').length === 1 && bf.type === 'history' &&
      bf.meta.profile[0].endsWith('/backport-subscription-notification-r4') && bf.entry[0].resource.resourceType === 'Parameters' &&
      bfs.params.subscription.valueReference.reference === `${base}/Subscription/${bFull.body.id}` &&
      bfs.params.topic.valueCanonical === TOPIC_URL && bfs.params.status.valueCode === 'active' &&
      bfs.params.type.valueCode === 'event-notification' && bfs.params['events-since-subscription-start'].valueString === '1' &&
      bfs.event['event-number'].valueString === '1' && bfs.event.focus.valueReference.reference === `${base}/Observation/${vital.body.id}` &&
      bf.entry.length === 2 && bf.entry[1].resource.id === vital.body.id, `${hits('/full-resource').length} notifications`);
    const ids = hits('/id-only').map((h) => statusParams(JSON.parse(h.body)));
    check('backport id-only: focus, no resource, events numbered', ids.length === 2 &&
      hits('/id-only').every((h) => JSON.parse(h.body).entry.length === 1) &&
      ids.map((s) => s.event['event-number'].valueString).join() === '1,2' && ids[0].event.focus.valueReference.reference.endsWith(vital.body.id));
    const empties = hits('/empty').map((h) => JSON.parse(h.body));
    check('backport empty: no focus', empties.length === 2 && empties.every((b) => b.entry.length === 1 && !statusParams(b).event.focus));

    // The admin switch: no delivery while off; backport event numbers show the gap.
    const off = await req(admin, { method: 'POST', body: JSON.stringify({ enabled: false }) });
    const before = hook.received.length;
    await post('Observation', observation('vital-signs'));
    await sleep(500);
    check('notifications switched off: none sent', off.status === 200 && off.body.enabled === false && hook.received.length === before,
      `${hook.received.length - before} sent`);
    const on = await req(admin, { method: 'POST', body: JSON.stringify({ enabled: true }) });
    const t2 = Date.now();
    await post('Observation', observation('vital-signs'));
    const back = await waitFor(() => hits('/id-only')[3 - 1]);
    check('switched back on: delivered, with the missed event counted', on.body.enabled === true && !!back &&
      statusParams(JSON.parse(back.body)).event['event-number'].valueString === '4', back ? `${back.at - t2} ms` : 'none');
    const badSwitch = await req(admin, { method: 'POST', body: '{"enabled": "no"}' });
    check('admin switch refuses a bad body', badSwitch.status === 400);

    // A deleted Subscription is not notified any more.
    const del = await req(`${base}/Subscription/${plain.body.id}`, { method: 'DELETE' });
    const plainBefore = hits('/plain').length;
    await post('Observation', observation('vital-signs'));
    await waitFor(() => hits('/id-only').length >= 4);
    await sleep(200);
    check('deleted Subscription: no notification after', del.status === 200 && hits('/id-only').length === 4 && hits('/plain').length === plainBefore,
      `${hits('/plain').length - plainBefore} after delete`);

    const delivered = hook.received.filter((h) => h.status === 200).length;
    const stats = await waitFor(async () => {
      const s = (await req(admin)).body;
      return s.sent === delivered && s.pending === 0 ? s : undefined;
    });
    check('GET /admin/notifications counts', stats?.sent === delivered && stats.failed === 1 && stats.retries === 1 && stats.dropped >= 4,
      stats ? `sent ${stats.sent}, failed ${stats.failed}, retries ${stats.retries}, dropped ${stats.dropped}` : 'no match');
  } finally {
    await stopServer(child);
    hook.server.closeAllConnections();
    hook.server.close();
  }
}

main()
  .catch((err) => check('smoke test ran', false, err.message))
  .finally(() => {
    process.stdout.write(`${passed} passed, ${failed} failed\n`);
    process.exitCode = failed ? 1 : 0;
  });
