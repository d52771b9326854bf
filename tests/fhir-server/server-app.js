'use strict';
// The HTTP server of the FHIR test server (server.js): every request is counted, then answered by
// the route family that takes it (admin, SMART, Bulk Data, type-level history) or, under the FHIR
// base, once authorized, delayed and faulted as configured and allowed by the profile, by the FHIR
// interactions: the CapabilityStatement, search, writes and transactions, and what the router
// answers itself.

const http = require('node:http');
const core = require('@medplum/core');
const { mulberry32 } = require('./generate.js');
const { Notifier } = require('./subscriptions.js');
const { getProfile, RequestStats } = require('./profiles.js');
const {
  HOST, BASE_PATH, HttpError, outcome, notFound, send, readBody, parseBody, sleep, describeHttp,
} = require('./server-http.js');
const { R4_RESOURCE_TYPES, buildCapabilityStatement } = require('./server-definitions.js');
const { subscriptionCriteria } = require('./server-search-params.js');
const { profileRefusal, refuseIf, forward, sendRouterResult } = require('./server-context.js');
const { SnapshotCache, search } = require('./server-search.js');
const { bundleRequest, handleWrite } = require('./server-writes.js');
const { smartAuthorized, handleSmart } = require('./server-smart.js');
const { handleBulk } = require('./server-bulk.js');
const { handleTypeHistory } = require('./server-history.js');
const { handleAdmin } = require('./server-admin.js');

// The HTTP server (HTTPS with --tls-cert) and its `ctx`; `setBaseUrl(port)` once it listens.
function createServer(opts, repo, router) {
  const ctx = {
    opts,
    repo,
    router,
    profile: getProfile(opts.profile), // profiles.js
    lookup: (type, id) => repo.resources.get(type)?.get(id),
    stats: new RequestStats(),
    snapshots: new SnapshotCache(),
    exportJobs: new Map(),
    faultRandom: mulberry32((opts.seed ^ 0x0fa17ed5) >>> 0),
    baseUrl: '',
    capabilityStatement: undefined,
    log: opts.verbose ? (msg) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`) : () => {},
  };
  ctx.notifier = new Notifier({ repo, baseUrl: () => ctx.baseUrl, log: ctx.log, checkCriteria: subscriptionCriteria });
  repo.notifier = ctx.notifier;

  const onRequest = (req, res) => {
    handle(ctx, req, res).catch((err) => {
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
    ctx.baseUrl = `${opts.tlsCert ? 'https' : 'http'}://${HOST}:${port}${BASE_PATH}`;
    ctx.capabilityStatement = ctx.profile.capabilityStatement(buildCapabilityStatement(ctx.baseUrl));
    return ctx.baseUrl;
  };
  return server;
}

// One request: counted, then answered; an error answers as an OperationOutcome.
async function handle(ctx, req, res) {
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
    if (request || bulk) ctx.stats.count(request?.interaction ?? `bulk-${bulk[1]}`, request?.type);
    const refuseByProfile = () => refuseIf(profileRefusal(ctx, request));
    if (handleAdmin(ctx, req, res, url, rawBody) || handleSmart(ctx, req, res, url, rawBody) ||
      handleBulk(ctx, req, res, url, refuseByProfile) || handleTypeHistory(ctx, req, res, url, refuseByProfile)) {
      return;
    }
    await fhirRequest(ctx, req, res, url, rawBody, refuseByProfile);
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
    ctx.log(`${req.method} ${req.url} -> ${res.statusCode} ${ms.toFixed(1)} ms`);
  }
}

// A request under the FHIR base: authorized, delayed and faulted as configured, then refused by the
// profile or answered.
async function fhirRequest(ctx, req, res, url, rawBody, refuseByProfile) {
  const { opts } = ctx;
  if (url.pathname !== BASE_PATH && !url.pathname.startsWith(BASE_PATH + '/')) {
    throw notFound(`No FHIR endpoint at ${url.pathname}; the base URL is ${ctx.baseUrl}`);
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
  if (injectedFault(ctx, req, res)) {
    return;
  }
  refuseByProfile();
  await handleFhir(ctx, req, res, url, rawBody);
}

// The fault --fault-rate and POST /admin/faults ask for, if any, answered instead of the request.
function injectedFault(ctx, req, res) {
  const { opts, faultRandom } = ctx;
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
    return true;
  }
  if (opts.garbageRate > 0 && req.method === 'GET' && faultRandom() < opts.garbageRate) {
    // What a misbehaving proxy answers: 200 with a page that is not a Bundle.
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<html><body>Gateway maintenance</body></html>');
    return true;
  }
  return false;
}

// A FHIR interaction: answered here, or by the router.
async function handleFhir(ctx, req, res, url, rawBody) {
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
    send(res, 200, ctx.capabilityStatement);
    return;
  }
  if (segments.length === 0 || segments[0].startsWith('$')) {
    // System-level interactions (batch/transaction, $graphql): the router's own.
    if (method === 'POST' && segments.length === 0 && body?.resourceType === 'Bundle') {
      await bundleRequest(ctx, res, url, body, req.headers);
      return;
    }
    sendRouterResult(ctx, res, await forward(ctx, method, path, url.search.substring(1), body, req.headers));
    return;
  }

  const resourceType = segments[0];
  if (!R4_RESOURCE_TYPES.has(resourceType)) {
    throw notFound(`Unknown resource type: ${resourceType}`);
  }

  if (segments.length === 1 && method === 'GET') {
    await search(ctx, res, resourceType, params);
    return;
  }
  if (isSearch) {
    const formParams = body && typeof body === 'object' && !body.resourceType ? Object.entries(body) : [];
    await search(ctx, res, resourceType, [...params, ...formParams]);
    return;
  }
  if (await handleWrite(ctx, req, res, { url, path, segments, params, body })) {
    return;
  }
  sendRouterResult(ctx, res, await forward(ctx, method, path, url.search.substring(1), body, req.headers));
}

module.exports = { createServer };
