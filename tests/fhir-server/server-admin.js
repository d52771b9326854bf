'use strict';
// Admin endpoints of the FHIR test server (server.js), outside the FHIR base and never delayed or
// faulted: GET /healthz, request counters (/admin/stats), fault injection (/admin/faults), the
// reference index switch (/admin/reference-index) and Subscription notifications
// (/admin/notifications). SMART clients are registered by server-smart.js.

const { outcome, send } = require('./server-http.js');

// An admin request (false for any other request).
function handleAdmin(ctx, req, res, url, rawBody) {
  const { pathname } = url;
  const { method } = req;
  if (pathname === '/healthz') {
    send(res, 200, { status: 'ok' });
    return true;
  }
  if (pathname === '/admin/stats' && (method === 'GET' || method === 'POST')) {
    adminStats(ctx, req, res, rawBody);
    return true;
  }
  if (pathname === '/admin/faults' && method === 'POST') {
    adminFaults(ctx, res, url);
    return true;
  }
  if (pathname === '/admin/reference-index' && method === 'POST') {
    adminReferenceIndex(ctx, res, rawBody);
    return true;
  }
  if (pathname === '/admin/notifications' && (method === 'POST' || method === 'GET')) {
    adminNotifications(ctx, req, res, rawBody);
    return true;
  }
  return false;
}

// Request counters since start or the last {"reset": true}.
function adminStats(ctx, req, res, rawBody) {
  const { profile, stats } = ctx;
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
}

// Resilience tests switch fault injection on and off while the server keeps its data.
function adminFaults(ctx, res, url) {
  const { opts } = ctx;
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
}

// {"enabled": false} answers patient/subject searches the stock way (tests compare the two).
function adminReferenceIndex(ctx, res, rawBody) {
  const { repo } = ctx;
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
}

// Tests switch Subscription notifications off to prove a client's safety-net poll, and count what
// went out. {"enabled": false|true}; anything else answers 400.
function adminNotifications(ctx, req, res, rawBody) {
  let body;
  if (req.method === 'POST') {
    try {
      body = JSON.parse(rawBody || 'null');
    } catch {
      body = null;
    }
  }
  send(res, 200, ctx.notifier.admin(body));
}

module.exports = { handleAdmin };
