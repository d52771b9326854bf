'use strict';
// Bulk Data export (HL7 Bulk Data Access 2.0) for the FHIR test server (server.js), which the stock
// router lacks: a kick-off answers 202 with a status URL; the first poll 202 with X-Progress and
// Retry-After (--bulk-retry-after); then the manifest, whose files hold the current version of
// every resource of each type (of the Group's members for a Group that exists; changed after
// `_since` when given).

const crypto = require('node:crypto');
const { BASE_PATH, outcome, badRequest, notFound, send } = require('./server-http.js');
const { refuseIf } = require('./server-context.js');

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

// A kick-off, a status poll (or DELETE) or a file of an export (false for any other request).
function handleBulk(ctx, req, res, url, refuseByProfile) {
  const origin = ctx.baseUrl.slice(0, -BASE_PATH.length);
  const kickoff = /^\/fhir\/R4\/(?:(?:Patient|Group\/([^/]+))\/)?\$export$/.exec(url.pathname);
  if (kickoff && req.method === 'GET') {
    refuseByProfile();
    kickOff(ctx, req, res, url, origin, kickoff);
    return true;
  }
  const status = /^\/bulk\/status\/([0-9a-f]+)$/.exec(url.pathname);
  if (status) {
    exportStatus(ctx, req, res, origin, status);
    return true;
  }
  const file = /^\/bulk\/file\/([0-9a-f]+)\/([A-Za-z]+)$/.exec(url.pathname);
  if (file && req.method === 'GET') {
    exportFile(ctx, req, res, origin, file);
    return true;
  }
  return false;
}

function kickOff(ctx, req, res, url, origin, kickoff) {
  const { exportJobs } = ctx;
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
}

function exportStatus(ctx, req, res, origin, status) {
  const { repo, profile, exportJobs, opts } = ctx;
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
}

function exportFile(ctx, req, res, origin, file) {
  const { profile, stats, exportJobs } = ctx;
  const leak = profile.bulk.authorizationLeak(req.headers, new URL(origin).host);
  if (leak) stats.leakedAuthorization += 1;
  refuseIf(leak);
  const job = exportJobs.get(file[1]);
  const f = job?.files?.[file[2]];
  if (!f) throw notFound('No such export file');
  res.writeHead(200, { 'Content-Type': 'application/fhir+ndjson', 'Content-Length': Buffer.byteLength(f.body) });
  res.end(f.body);
}

module.exports = { handleBulk };
