'use strict';
// Self-check of the FHIR test server: starts it on a free port, exercises the behaviour the
// adapter relies on, stops it. Usage: node smoke-test.js   (exit code 0 when every check passes)

const { spawn } = require('node:child_process');
const path = require('node:path');
const { generateWithStats } = require('./generate.js');

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
}

main()
  .catch((err) => check('smoke test ran', false, err.message))
  .finally(() => {
    process.stdout.write(`${passed} passed, ${failed} failed\n`);
    process.exitCode = failed ? 1 : 0;
  });
