'use strict';
// Self-check of the vendor profiles (README.md, "Profiles"): starts the server with `--profile
// epic` and `--profile oracle` (and `open`), each with `--patients 20 --group 10`, and checks each
// rule: refusals answer their status with an OperationOutcome, the allowed forms succeed.
// Usage: node profiles-test.js   (exit code 0 when every check passes)

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const path = require('node:path');
const { generate, MRN_SYSTEM } = require('./generate.js');

const SEED = 42;
const PATIENTS = 20;
const GROUP = 10;
let passed = 0;
let failed = 0;

function check(name, ok, detail = '') {
  if (ok) passed++;
  else failed++;
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}\n`);
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
        resolve({ child, base: m[1], origin: m[1].replace(/\/fhir\/R4$/, '') });
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

function stopServer(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.removeAllListeners('exit');
    child.on('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function req(url, init) {
  const res = await fetch(url, init);
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, body };
}

const json = (method, body, headers = {}) => ({
  method,
  headers: { 'content-type': 'application/fhir+json', ...headers },
  body: JSON.stringify(body),
});
const nextLink = (bundle) => bundle.link?.find((l) => l.relation === 'next')?.url;
const linkOf = (bundle, relation) => bundle.link?.find((l) => l.relation === relation)?.url;
const resources = (bundle) => (bundle.entry ?? []).map((e) => e.resource);
// An OperationOutcome with this issue code (and text matching `text`, when given).
const isOutcome = (body, code, text) =>
  body?.resourceType === 'OperationOutcome' && body.issue?.[0]?.code === code && (!text || text.test(body.issue[0].details?.text ?? ''));
const refused = (r, status, code, text) => r.status === status && isOutcome(r.body, code, text);
const show = (r) => `${r.status} ${r.body?.issue?.[0]?.code ?? ''} ${r.body?.issue?.[0]?.details?.text ?? ''}`.trim();
const noVersion = (r) => r && !r.meta?.versionId && !r.meta?.lastUpdated && (r.meta === undefined || Object.keys(r.meta).length > 0);

const observation = (subject, status = 'final') => ({
  resourceType: 'Observation',
  status,
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
  code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
  subject: { reference: subject },
  effectiveDateTime: '2026-10-31T10:00:00Z',
  valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
});
const riskAssessment = (subject) => ({
  resourceType: 'RiskAssessment',
  identifier: [{ system: 'urn:profiles-test', value: 'ra-1' }],
  status: 'final',
  subject: { reference: subject },
  prediction: [{ probabilityDecimal: 0.3 }],
});
const communication = (subject) => ({ resourceType: 'Communication', status: 'completed', subject: { reference: subject },
  payload: [{ contentString: 'readmission risk high' }] });
const subscription = { resourceType: 'Subscription', status: 'requested', reason: 'test', criteria: 'Observation',
  channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:9/x' } };

// The generated patients in generation order (what Group/cohort lists first).
const generatedPatients = generate({ patients: PATIENTS, seed: SEED }).filter((r) => r.resourceType === 'Patient');
const mrnOf = (patient) => patient.identifier.find((i) => i.system === MRN_SYSTEM).value;

async function walk(url) {
  const pages = [];
  while (url) {
    const page = await req(url);
    if (page.status !== 200) throw new Error(`page ${url} answered ${show(page)}`);
    pages.push(page.body);
    url = nextLink(page.body);
  }
  return pages;
}

// Group/cohort: the first GROUP patients, in generation order.
async function checkGroup(label, base) {
  const group = await req(`${base}/Group/cohort`);
  const members = (group.body?.member ?? []).map((m) => m.entity.reference);
  const mrns = [];
  for (const ref of members) mrns.push(mrnOf((await req(`${base}/${ref}`)).body));
  check(`${label}: Group/cohort lists the first ${GROUP} patients in generation order`, group.status === 200 &&
    group.body.type === 'person' && group.body.actual === true && members.length === GROUP &&
    members.every((m) => /^Patient\/[0-9a-f-]{36}$/.test(m)) &&
    mrns.join() === generatedPatients.slice(0, GROUP).map(mrnOf).join(), `${group.status}, ${members.length} members`);
  return { group: group.body, members };
}

// Kick-off, polls and manifest of a Bulk Data export; returns the manifest and the poll answers.
async function bulkExport(base, kickoff) {
  const k = await req(`${base}/${kickoff}`, { headers: { prefer: 'respond-async' } });
  if (k.status !== 202) return { kickoff: k };
  const statusUrl = k.headers.get('content-location');
  const polls = [];
  for (let i = 0; i < 5; i++) {
    const p = await req(statusUrl);
    polls.push(p);
    if (p.status === 200) return { kickoff: k, polls, manifest: p.body };
  }
  return { kickoff: k, polls };
}

const ndjson = (text) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l));

// ---------------------------------------------------------------------------------------------
// Searches by patient or subject come from the reference index (README, "Indexes"): the answers
// must be the stock repository's (POST /admin/reference-index {"enabled": false}), page for page.

const VITALS = ['8867-4', '9279-1', '59408-5', '2708-6', '8310-5', '29463-7', '39156-5', '85354-9', '8480-6']
  .map((c) => `http://loinc.org|${c}`).join(',');

// Every page of a search (following next links, or a batch's answer): statuses, totals, entries
// and links (without the snapshot token, which differs from one walk to the next).
async function answer(url, init) {
  const pages = [];
  for (let u = url; u; ) {
    const r = await req(u, init);
    const link = (r.body?.link ?? []).map((l) => `${l.relation} ${l.url.replace(/&_snapshot=[^&]*/g, '')}`);
    pages.push({ status: r.status, total: r.body?.total, entry: r.body?.entry ?? r.body, link });
    u = r.status === 200 && !init ? nextLink(r.body) : undefined;
  }
  return JSON.stringify(pages);
}

async function referenceIndexChecks(label, base, origin, members) {
  const [p0, p1, p2] = members.map((m) => m.split('/')[1]);
  const code = encodeURIComponent(VITALS);
  const searches = [`Observation?patient=${[p0, p1, p2].join(',')}&_count=20`];
  for (const p of [p0, p1, 'does-not-exist']) {
    searches.push(`Observation?patient=${p}&code=${code}&date=ge2025-12-01T00:00:00Z&_count=200`,
      `Observation?patient=Patient/${p}&code=${code}&date=ge2026-01-01&date=le2026-10-01&_count=4`,
      `Observation?subject=${p}&category=vital-signs&_count=7`, `Observation?subject:Patient=${p}&date=le2026-06-01&_count=0`,
      `Observation?subject=Patient/${p}&code=http://loinc.org|8867-4,http://loinc.org|8480-6&status=final`,
      `Observation?subject=Patient/${p}&_summary=count`, `Encounter?patient=${p}&date=ge2025-12-01T00:00:00Z`,
      `Encounter?subject=${p}&status=finished&_count=2`, `Condition?patient=${p}`, `RiskAssessment?patient=${p}`,
      `Communication?subject=${p}&_count=1`);
  }
  const batch = json('POST', { resourceType: 'Bundle', type: 'batch', entry: [
    { request: { method: 'GET', url: `Observation?patient=Patient/${p0}&code=${code}&date=ge2025-12-01T00:00:00Z` } },
    { request: { method: 'GET', url: `Encounter?subject=Patient/${p1}` } }] });
  const compare = async (when) => {
    const ms = {};
    const answers = {};
    for (const enabled of [true, false]) {
      await req(`${origin}/admin/reference-index`, json('POST', { enabled }));
      const t = Date.now();
      answers[enabled] = [];
      for (const s of searches) answers[enabled].push(await answer(`${base}/${s}`));
      answers[enabled].push(await answer(base, batch));
      ms[enabled] = Date.now() - t;
    }
    const differ = searches.concat('batch').filter((s, i) => answers.true[i] !== answers.false[i]);
    const matched = answers.true.filter((a) => /"resourceType":"(Observation|Encounter)"/.test(a)).length;
    check(`${label}: patient/subject searches ${when} answer as the stock repository, page for page`, differ.length === 0 && matched >= 8,
      differ.length ? `differ: ${differ.join(' | ')}` : `${searches.length + 1} searches, ${matched} with entries`);
    // A figure, not a check: a timing does not belong in a pass/fail test.
    console.log(`  (${label}: ${when}, from the index ${ms.true} ms, stock ${ms.false} ms)`);
  };
  await compare('as preloaded');

  // Writes of every kind: create, delete, an update moving an Observation to another patient, a
  // delete and re-create of the same id (PUT: last in the store's order), a transaction and a batch.
  const list = async (q) => resources((await req(`${base}/${q}`)).body);
  const [gone, moved] = await list(`Observation?patient=${p0}&code=${code}&_count=2`);
  const movedEtag = `W/"${moved.meta.versionId}"`;
  const writes = [
    await req(`${base}/Observation`, json('POST', observation(`Patient/${p0}`))),
    await req(`${base}/Observation/${gone.id}`, { method: 'DELETE' }),
    await req(`${base}/Observation/${moved.id}`, json('PUT', { ...moved, subject: { reference: `Patient/${p1}` } }, { 'if-match': movedEtag })),
    await req(`${base}/Observation/${gone.id}`, json('PUT', gone)), // 412 with oracle: update does not create
    await req(`${base}/Condition`, json('POST', { resourceType: 'Condition', subject: { reference: `Patient/${p0}` },
      code: { text: 'heart failure' } })),
    await req(`${base}/Communication`, json('POST', communication(`Patient/${p1}`))),
    await req(`${base}/RiskAssessment`, json('POST', riskAssessment(`Patient/${p0}`))), // 405 with oracle
    await req(base, json('POST', { resourceType: 'Bundle', type: 'transaction', entry: [
      { resource: observation(`Patient/${p1}`), request: { method: 'POST', url: 'Observation' } }] })),
    await req(base, json('POST', { resourceType: 'Bundle', type: 'batch', entry: [
      { request: { method: 'DELETE', url: `Encounter/${(await list(`Encounter?patient=${p1}`))[0].id}` } },
      { resource: observation(`Patient/${p0}`), request: { method: 'POST', url: 'Observation' } }] })),
  ];
  check(`${label}: writes for the comparison`, writes.every((w) => w.status < 300 || w.status === 405 || w.status === 412),
    writes.map((w) => w.status).join());
  await compare('after writes');
}

// ---------------------------------------------------------------------------------------------

async function epicChecks() {
  const { child, base, origin } = await startServer(['--profile', 'epic', '--patients', String(PATIENTS), '--group', String(GROUP)]);
  const stats = `${origin}/admin/stats`;
  try {
    const { group, members } = await checkGroup('epic', base);
    check('epic: Group read has no version metadata', noVersion(group));
    const patientRef = members[0];
    const patientId = patientRef.split('/')[1];

    // Search parameters required.
    const bad = await Promise.all([
      'Observation', 'Observation?patient=' + patientId, 'Observation?category=vital-signs',
      'Observation?code=http://loinc.org|8867-4', 'Encounter?status=finished', 'Patient?gender=male', 'Patient?family=Moore',
      'Condition?clinical-status=active',
    ].map((q) => req(`${base}/${q}`)));
    check('epic: searches without their required parameters answer 400 required', bad.every((r) => refused(r, 400, 'required')),
      bad.map(show).join(' | '));
    check('epic: the refusal names what is missing', /category or code/.test(bad[1].body.issue[0].details.text) &&
      /patient \(or subject\)/.test(bad[2].body.issue[0].details.text), bad[1].body.issue[0].details.text);
    const obsSearch = await req(`${base}/Observation?patient=${patientId}&category=vital-signs`);
    const bySubject = await req(`${base}/Observation?subject=${patientRef}&code=${encodeURIComponent('http://loinc.org|8867-4')}`);
    const someId = resources(obsSearch.body)[0]?.id;
    const byId = await req(`${base}/Observation?_id=${someId}`);
    check('epic: Observation search with patient and category, subject and code, or _id', obsSearch.status === 200 &&
      obsSearch.body.total > 0 && bySubject.status === 200 && bySubject.body.total > 0 && byId.body?.total === 1,
      `${obsSearch.body.total}, ${bySubject.body.total}, ${byId.body?.total}`);
    const enc = await req(`${base}/Encounter?patient=${patientId}`);
    check('epic: Encounter search with patient', enc.status === 200 && enc.body.total > 0);
    const conditions = await req(`${base}/Condition?patient=${members.map((m) => m.split('/')[1]).join(',')}`);
    check('epic: Condition search with patient', conditions.status === 200 && conditions.body.total > 0 &&
      resources(conditions.body).every((c) => c.resourceType === 'Condition' && members.includes(c.subject.reference)),
      `${conditions.status} ${conditions.body?.total}`);
    const p0 = generatedPatients[0];
    const pats = await Promise.all([
      `Patient?_id=${patientId}`, `Patient?identifier=${encodeURIComponent(`${MRN_SYSTEM}|${mrnOf(p0)}`)}`,
      `Patient?family=${p0.name[0].family}&birthdate=${p0.birthDate}`,
    ].map((q) => req(`${base}/${q}`)));
    check('epic: Patient search by _id, identifier, or family and birthdate', pats.every((r) => r.status === 200 && r.body.total >= 1),
      pats.map((r) => r.status).join());

    // _lastUpdated, _sort and _since are unknown parameters.
    const ctl = await Promise.all(['_lastUpdated=ge2000-01-01', '_sort=date', '_since=2000-01-01T00:00:00Z']
      .map((q) => req(`${base}/Observation?patient=${patientId}&category=vital-signs&${q}`)));
    check('epic: _lastUpdated, _sort, _since refused as unknown parameters (400)',
      ctl.every((r) => refused(r, 400, 'invalid', /Unknown search parameter "_(lastUpdated|sort|since)"/)), ctl.map(show).join(' | '));

    // No history, no Subscription.
    const hist = await Promise.all(['Patient/_history', `Patient/${patientId}/_history`, `Patient/${patientId}/_history/1`]
      .map((p) => req(`${base}/${p}`)));
    check('epic: _history (type, instance, version) answers 405 not-supported', hist.every((r) => refused(r, 405, 'not-supported')),
      hist.map(show).join(' | '));
    const subs = [await req(`${base}/Subscription`, json('POST', subscription)), await req(`${base}/Subscription?status=active`)];
    check('epic: Subscription create and search answer 405 not-supported', subs.every((r) => refused(r, 405, 'not-supported')),
      subs.map(show).join(' | '));

    // No version metadata anywhere.
    const read = await req(`${base}/${patientRef}`);
    const created = await req(`${base}/Observation`, json('POST', observation(patientRef)));
    check('epic: read has no meta.versionId/lastUpdated, no ETag or Last-Modified', read.status === 200 && noVersion(read.body) &&
      !read.headers.get('etag') && !read.headers.get('last-modified'));
    check('epic: search entries have no version metadata', resources(obsSearch.body).every(noVersion) &&
      resources(obsSearch.body).some((r) => r.meta?.profile));
    check('epic: Observation create (final) 201 with no version metadata, Location without _history', created.status === 201 &&
      noVersion(created.body) && !created.headers.get('etag') &&
      created.headers.get('location') === `${base}/Observation/${created.body.id}`, `${created.status} ${created.headers.get('location')}`);

    // Writes.
    const prelim = await req(`${base}/Observation`, json('POST', observation(patientRef, 'preliminary')));
    check('epic: Observation create not final answers 400', prelim.status === 400 && prelim.body.resourceType === 'OperationOutcome', show(prelim));
    const obsUpdate = await req(`${base}/Observation/${created.body.id}`, json('PUT', { ...created.body, status: 'amended' }));
    check('epic: Observation update answers 405 not-supported', refused(obsUpdate, 405, 'not-supported'), show(obsUpdate));
    const condUpdate = await req(`${base}/Patient?identifier=${encodeURIComponent(`${MRN_SYSTEM}|${mrnOf(p0)}`)}`, json('PUT', read.body));
    check('epic: conditional update answers 405 not-supported', refused(condUpdate, 405, 'not-supported', /conditional update is not supported/),
      show(condUpdate));
    const raText = /RiskAssessment is not a supported resource for write/;
    const raWrites = [
      await req(`${base}/RiskAssessment`, json('POST', riskAssessment(patientRef))),
      await req(`${base}/RiskAssessment/x1`, json('PUT', { ...riskAssessment(patientRef), id: 'x1' })),
      await req(`${base}/RiskAssessment?identifier=${encodeURIComponent('urn:profiles-test|ra-1')}`, json('PUT', riskAssessment(patientRef))),
    ];
    check('epic: RiskAssessment POST, PUT, conditional PUT answer 405 not-supported', raWrites.every((r) => refused(r, 405, 'not-supported', raText)),
      raWrites.map(show).join(' | '));
    const batch = await req(base, json('POST', { resourceType: 'Bundle', type: 'batch', entry: [
      { resource: riskAssessment(patientRef), request: { method: 'PUT', url: 'RiskAssessment?identifier=urn:profiles-test|ra-1' } },
      { resource: observation(patientRef), request: { method: 'POST', url: 'Observation' } },
    ] }));
    const st = batch.body?.entry?.map((e) => e.response.status);
    check('epic: batch: the RiskAssessment entry answers 405, the other runs', batch.status === 200 && st?.join() === '405,201' &&
      isOutcome(batch.body.entry[0].response.outcome, 'not-supported', raText) && !batch.body.entry[1].response.etag, st?.join());
    const tx = await req(base, json('POST', { resourceType: 'Bundle', type: 'transaction', entry: [
      { resource: riskAssessment(patientRef), request: { method: 'POST', url: 'RiskAssessment' } },
    ] }));
    check('epic: transaction with a RiskAssessment write answers 405', refused(tx, 405, 'not-supported', raText), show(tx));
    const raRead = await req(`${base}/RiskAssessment?subject=${patientRef}`);
    check('epic: RiskAssessment search answers 404 unknown type', refused(raRead, 404, 'not-found'), show(raRead));
    const comm = await req(`${base}/Communication`, json('POST', communication(patientRef)));
    check('epic: Communication create', comm.status === 201 && noVersion(comm.body), `${comm.status}`);

    // Bulk Data export: Group level only, without _since.
    const sys = await req(`${base}/$export`, { headers: { prefer: 'respond-async' } });
    const pat = await req(`${base}/Patient/$export`, { headers: { prefer: 'respond-async' } });
    const since = await req(`${base}/Group/cohort/$export?_since=2000-01-01T00:00:00Z`, { headers: { prefer: 'respond-async' } });
    const unknownGroup = await req(`${base}/Group/nope/$export`, { headers: { prefer: 'respond-async' } });
    check('epic: system and Patient export 405, _since 400, unknown Group 404', refused(sys, 405, 'not-supported') &&
      refused(pat, 405, 'not-supported') && refused(since, 400, 'not-supported', /_since/) && refused(unknownGroup, 404, 'not-found'),
      [sys, pat, since, unknownGroup].map(show).join(' | '));
    const ex = await bulkExport(base, 'Group/cohort/$export?_type=Patient,Observation');
    const files = {};
    for (const o of ex.manifest?.output ?? []) files[o.type] = ndjson((await req(o.url)).body);
    const memberSet = new Set(members);
    check('epic: Group export holds the members only, without version metadata', ex.kickoff.status === 202 &&
      files.Patient?.length === GROUP && files.Patient.every((p) => memberSet.has(`Patient/${p.id}`) && noVersion(p)) &&
      files.Observation?.length > 0 && files.Observation.every((o) => memberSet.has(o.subject.reference) && noVersion(o)),
      `${files.Patient?.length} Patients, ${files.Observation?.length} Observations`);

    // CapabilityStatement.
    const cs = (await req(`${base}/metadata`)).body;
    const entry = (type) => cs.rest[0].resource.find((r) => r.type === type);
    const params = (type) => entry(type).searchParam.map((p) => p.name);
    check('epic: metadata: no _lastUpdated for Observation and Encounter', !params('Observation').includes('_lastUpdated') &&
      !params('Encounter').includes('_lastUpdated') && params('Observation').includes('patient'));
    check('epic: metadata: Observation read, search-type, create only',
      entry('Observation').interaction.map((i) => i.code).sort().join() === 'create,read,search-type');
    check('epic: metadata: conditionalUpdate false everywhere, no RiskAssessment, no Subscription',
      cs.rest[0].resource.every((r) => r.conditionalUpdate === false) && !entry('RiskAssessment') && !entry('Subscription') &&
      !JSON.stringify(cs).includes('subscriptions-backport'));

    // Request counters.
    const reset = await req(stats, json('POST', { reset: true }));
    await req(`${base}/${patientRef}`);
    await req(`${base}/Observation?patient=${patientId}&category=vital-signs`);
    await req(`${base}/Encounter?patient=${patientId}`);
    await req(`${base}/Observation`, json('POST', observation(patientRef)));
    await req(`${base}/Observation?patient=${patientId}`); // refused, still counted
    const s = (await req(stats)).body;
    check('epic: /admin/stats counts by interaction and type after a reset', reset.status === 200 && reset.body.requests === 0 &&
      s.requests === 5 && s.byInteraction.read === 1 && s.byInteraction.search === 3 && s.byInteraction.create === 1 &&
      s.byType.Observation === 3 && s.byType.Patient === 1 && s.byType.Encounter === 1 && s.throttled === 0 &&
      s.leakedAuthorization === 0, JSON.stringify(s));
    const badReset = await req(stats, { method: 'POST', body: '{"reset": "yes"}' });
    check('epic: /admin/stats refuses a bad body', badReset.status === 400);
  } finally {
    await stopServer(child);
  }
}

// ---------------------------------------------------------------------------------------------

function signedAssertion(privateKey, clientId, aud) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: 'RS384', typ: 'JWT' })}.${b64({ iss: clientId, sub: clientId, aud, exp: now + 240, jti: crypto.randomUUID() })}`;
  return `${input}.${crypto.sign('sha384', Buffer.from(input), privateKey).toString('base64url')}`;
}

async function oracleChecks() {
  const { child, base, origin } = await startServer(['--profile', 'oracle', '--patients', String(PATIENTS), '--group', String(GROUP),
    '--bulk-retry-after', '3600']);
  const stats = `${origin}/admin/stats`;
  try {
    const { group, members } = await checkGroup('oracle', base);
    check('oracle: Group read keeps its version', !!group.meta?.versionId && !!group.meta?.lastUpdated);
    const patientRef = members[0];
    const patientId = patientRef.split('/')[1];

    // Required parameters.
    const bad = await Promise.all(['Observation?category=vital-signs', 'Encounter?status=finished', 'Patient?gender=male',
      'Condition?code=http://snomed.info/sct|38341003'].map((q) => req(`${base}/${q}`)));
    check('oracle: Observation, Encounter, Condition, Patient searches without patient/_id/identifier answer 400 required',
      bad.every((r) => refused(r, 400, 'required')), bad.map(show).join(' | '));
    const p0 = generatedPatients[0];
    const good = await Promise.all([`Observation?patient=${patientId}`, `Observation?subject=${patientRef}`, `Encounter?patient=${patientId}`,
      `Condition?subject=${members.map((m) => m.split('/')[1]).join(',')}`, `Patient?identifier=${encodeURIComponent(`${MRN_SYSTEM}|${mrnOf(p0)}`)}`, `Patient?_id=${patientId}`]
      .map((q) => req(`${base}/${q}`)));
    check('oracle: the allowed forms answer 200', good.every((r) => r.status === 200 && r.body.total > 0), good.map((r) => r.status).join());

    // _lastUpdated and _sort.
    const q = `${base}/Observation?patient=${patientId}`;
    const lu = await Promise.all([
      `${q}&_lastUpdated=ge2000-01-01T00:00:00Z`, `${q}&_lastUpdated=ge2000-01-01&_lastUpdated=lt2100-01-01`,
    ].map((u) => req(u)));
    check('oracle: _lastUpdated with ge/lt, once or twice', lu.every((r) => r.status === 200 && r.body.total === good[0].body.total),
      lu.map((r) => `${r.status} ${r.body.total}`).join());
    const luBad = await Promise.all([
      `${q}&_lastUpdated=2020-01-01`, `${q}&_lastUpdated=eq2020-01-01`,
      `${q}&_lastUpdated=ge2000-01-01&_lastUpdated=lt2100-01-01&_lastUpdated=lt2090-01-01`,
      `${q}&_lastUpdated=ge2000-01-01&date=ge2000-01-01`, `${q}&_sort=-date`,
    ].map((u) => req(u)));
    check('oracle: _lastUpdated without prefix, three times, or with date, and _sort, answer 400', luBad.every((r) => r.status === 400 &&
      r.body.resourceType === 'OperationOutcome'), luBad.map(show).join(' | '));

    // Newest first; first Observation page of 50; later pages the clamped _count; no loss or repeat.
    const cohort = `patient=${members.join(',')}`;
    const total = (await req(`${base}/Observation?${cohort}&_summary=count`)).body.total;
    const first = await req(`${base}/Observation?${cohort}&_count=7`);
    const late = await req(`${base}/Observation`, json('POST', observation(patientRef))); // written mid-walk
    const pages = [first.body, ...(await walk(nextLink(first.body)))];
    const sizes = pages.map((p) => (p.entry ?? []).length);
    const walked = pages.flatMap(resources);
    const ids = new Set(walked.map((r) => r.id));
    check('oracle: first Observation page 50, later pages _count', total > 100 && sizes[0] === 50 &&
      sizes.slice(1, -1).every((n) => n === 7) && sizes[sizes.length - 1] <= 7, `${total} over ${sizes.length} pages: ${sizes.slice(0, 4).join(',')}...`);
    check('oracle: the walk neither loses nor repeats (a write mid-walk stays out)', walked.length === total && ids.size === total &&
      late.status === 201 && !ids.has(late.body.id), `${walked.length} walked, ${ids.size} distinct, total ${total}`);
    let newestFirst = true;
    for (let i = 1; i < walked.length; i++) {
      const [a, b] = [walked[i - 1], walked[i]];
      if (a.meta.lastUpdated < b.meta.lastUpdated || (a.meta.lastUpdated === b.meta.lastUpdated && a.id > b.id)) newestFirst = false;
    }
    check('oracle: results newest first by _lastUpdated, then id', newestFirst);
    const prev = await req(linkOf(pages[1], 'previous'));
    check('oracle: previous of the second page is the first page', prev.status === 200 &&
      resources(prev.body).map((r) => r.id).join() === resources(pages[0]).map((r) => r.id).join());
    const big = await req(`${base}/Observation?${cohort}&_count=500`);
    const big2 = await req(nextLink(big.body));
    const noCount = await req(`${base}/Observation?${cohort}`);
    const noCount2 = await req(nextLink(noCount.body));
    check('oracle: _count above 200 is clamped to 200 (first page still 50); no _count pages by 50',
      big.body.entry.length === 50 && big2.body.entry.length === Math.min(200, total + 1 - 50) && /_count=200/.test(nextLink(big.body)) &&
      noCount.body.entry.length === 50 && noCount2.body.entry.length === 50,
      `${big.body.entry.length}, ${big2.body.entry.length}; ${noCount.body.entry.length}, ${noCount2.body.entry.length}`);
    const enc = await req(`${base}/Encounter?${cohort}&_count=5`);
    check('oracle: other types page by _count from the first page', enc.body.entry.length === 5);

    // If-Match.
    const read = await req(`${base}/${patientRef}`);
    const etag = read.headers.get('etag');
    const body = { ...read.body, gender: 'other' };
    const none = await req(`${base}/${patientRef}`, json('PUT', body));
    const wrong = await req(`${base}/${patientRef}`, json('PUT', body, { 'if-match': 'W/"not-the-version"' }));
    const right = await req(`${base}/${patientRef}`, json('PUT', body, { 'if-match': etag }));
    const stale = await req(`${base}/${patientRef}`, json('PUT', body, { 'if-match': etag }));
    check('oracle: read carries ETag W/"versionId" and meta', etag === `W/"${read.body.meta.versionId}"` && !!read.body.meta.lastUpdated &&
      !!read.headers.get('last-modified'), etag);
    check('oracle: update without If-Match 412 conflict', refused(none, 412, 'conflict', /If-Match is required/), show(none));
    check('oracle: update with a wrong or stale If-Match 412 conflict', refused(wrong, 412, 'conflict', /does not match/) &&
      refused(stale, 412, 'conflict', /does not match/), `${show(wrong)} | ${show(stale)}`);
    check('oracle: update with the current If-Match 200, new version', right.status === 200 && right.body.gender === 'other' &&
      right.headers.get('etag') === `W/"${right.body.meta.versionId}"` && right.body.meta.versionId !== read.body.meta.versionId, show(right));

    // Writes.
    const condUpdate = await req(`${base}/Patient?identifier=${encodeURIComponent(`${MRN_SYSTEM}|${mrnOf(p0)}`)}`, json('PUT', body));
    check('oracle: conditional update 405 not-supported', refused(condUpdate, 405, 'not-supported', /conditional update/), show(condUpdate));
    const ra = await req(`${base}/RiskAssessment`, json('POST', riskAssessment(patientRef)));
    const current = (await req(`${base}/${patientRef}`)).body;
    const raBatch = await req(base, json('POST', { resourceType: 'Bundle', type: 'batch', entry: [
      { resource: riskAssessment(patientRef), request: { method: 'POST', url: 'RiskAssessment' } },
      { resource: current, request: { method: 'PUT', url: patientRef } },
      { resource: current, request: { method: 'PUT', url: patientRef, ifMatch: `W/"${current.meta.versionId}"` } },
    ] }));
    const batchStatuses = raBatch.body?.entry?.map((e) => e.response.status).join();
    check('oracle: RiskAssessment write 405 not-supported (alone and in a batch); batch updates need ifMatch too',
      refused(ra, 405, 'not-supported') && batchStatuses === '405,412,200', `${show(ra)}, batch ${batchStatuses}`);
    const obs = await req(`${base}/Observation`, json('POST', observation(patientRef, 'preliminary')));
    const comm = await req(`${base}/Communication`, json('POST', communication(patientRef)));
    check('oracle: Observation and Communication create, with version', obs.status === 201 && comm.status === 201 &&
      !!obs.body.meta.versionId && obs.headers.get('etag') === `W/"${obs.body.meta.versionId}"`, `${obs.status} ${comm.status}`);
    const subs = [await req(`${base}/Subscription`, json('POST', subscription)), await req(`${base}/Subscription`)];
    check('oracle: Subscription 405 not-supported', subs.every((r) => refused(r, 405, 'not-supported')), subs.map(show).join(' | '));

    // Bulk Data export.
    const sys = await req(`${base}/$export`, { headers: { prefer: 'respond-async' } });
    const pat = await req(`${base}/Patient/$export`, { headers: { prefer: 'respond-async' } });
    check('oracle: system and Patient export 405', refused(sys, 405, 'not-supported') && refused(pat, 405, 'not-supported'));
    const ex = await bulkExport(base, 'Group/cohort/$export?_type=Patient&_since=2000-01-01T00:00:00Z');
    check('oracle: Group export with _since; poll answers Retry-After from --bulk-retry-after', ex.kickoff.status === 202 &&
      ex.polls[0].status === 202 && ex.polls[0].headers.get('retry-after') === '3600' && !!ex.manifest,
      `${ex.kickoff.status}, Retry-After ${ex.polls?.[0]?.headers.get('retry-after')}`);
    const fileUrl = ex.manifest?.output?.[0]?.url ?? '';
    const port = new URL(origin).port;
    check('oracle: manifest file URLs on http://localhost:<port>', fileUrl.startsWith(`http://localhost:${port}/bulk/file/`), fileUrl);
    const leaked = await req(fileUrl, { headers: { authorization: 'Bearer secret' } });
    const clean = await req(fileUrl);
    const sameHost = await req(fileUrl.replace('//localhost:', '//127.0.0.1:'), { headers: { authorization: 'Bearer secret' } });
    check('oracle: file with Authorization on the other host 403; without 200 (the Group members)', refused(leaked, 403, 'forbidden') &&
      clean.status === 200 && ndjson(clean.body).length === GROUP && sameHost.status === 200, `${leaked.status} ${clean.status} ${sameHost.status}`);

    // SMART tokens: 570 s, at most one a minute.
    const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    await req(`${origin}/admin/smart`, { method: 'POST', body: JSON.stringify({ clientId: 'oracle-test',
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }), required: false }) });
    const token = () => req(`${origin}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/*.read',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: signedAssertion(privateKey, 'oracle-test', `${origin}/auth/token`) }).toString() });
    const t1 = await token();
    const t2 = await token();
    check('oracle: token lasts 570 s', t1.status === 200 && t1.body.expires_in === 570, `${t1.status} ${t1.body?.expires_in}`);
    check('oracle: a second token within 60 s answers 429 slow_down', t2.status === 429 && t2.body.error === 'slow_down', `${t2.status}`);

    const s = (await req(stats)).body;
    check('oracle: /admin/stats counts throttled and leakedAuthorization', s.throttled === 1 && s.leakedAuthorization === 1 &&
      s.byInteraction.update === 5 && s.byInteraction.batch === 1 && s.byInteraction.export === 3 && s.byInteraction['bulk-file'] === 3, JSON.stringify(s));

    const unknown = [await req(`${base}/Foo/1`, json('PUT', { resourceType: 'Foo', id: '1' })), await req(`${base}/Foo`),
      await req(`${base}/Observation?patient=${patientId}&bogus=1`)];
    check('oracle: unknown types and parameters answer as in open (404, 400)', refused(unknown[0], 404, 'not-found') &&
      refused(unknown[1], 404, 'not-found') && refused(unknown[2], 400, 'invalid', /Unknown search parameter "bogus"/),
      unknown.map(show).join(' | '));

    const cs = (await req(`${base}/metadata`)).body;
    check('oracle: metadata: no Subscription, conditionalUpdate false, no _sort', !cs.rest[0].resource.some((r) => r.type === 'Subscription') &&
      cs.rest[0].resource.every((r) => r.conditionalUpdate === false) && !cs.rest[0].searchParam.some((p) => p.name === '_sort'));

    await referenceIndexChecks('oracle', base, origin, members);
  } finally {
    await stopServer(child);
  }
}

// ---------------------------------------------------------------------------------------------

async function openChecks() {
  const { child, base, origin } = await startServer(['--patients', String(PATIENTS), '--group', String(GROUP)]);
  try {
    const { group, members } = await checkGroup('open', base);
    check('open: Group read keeps its version', !!group.meta?.versionId);
    await req(`${origin}/admin/stats`, json('POST', { reset: true }));
    const all = await req(`${base}/Observation?_count=7&_sort=_lastUpdated`);
    const hist = await req(`${base}/Patient/_history?_since=2000-01-01T00:00:00Z&_count=1`);
    const s = (await req(`${origin}/admin/stats`)).body;
    check('open: unchanged (first page _count, _sort, history) and counted', all.body.entry.length === 7 && hist.status === 200 &&
      s.profile === 'open' && s.requests === 2 && s.byInteraction.search === 1 && s.byInteraction.history === 1, JSON.stringify(s));
    const ex = await bulkExport(base, 'Group/cohort/$export?_type=Patient');
    const file = await req(ex.manifest.output[0].url);
    check('open: Group/cohort export holds its members', ndjson(file.body).length === GROUP);
    await referenceIndexChecks('open', base, origin, members);
  } finally {
    await stopServer(child);
  }
}

async function main() {
  await epicChecks();
  await oracleChecks();
  await openChecks();
}

main()
  .catch((err) => check('profiles test ran', false, err.stack))
  .finally(() => {
    process.stdout.write(`${passed} passed, ${failed} failed\n`);
    process.exitCode = failed ? 1 : 0;
  });
