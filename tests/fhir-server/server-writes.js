'use strict';
// Writes and transactions for the FHIR test server (server.js): create (the server assigns the id),
// update as create (201), conditional update/delete/patch whose criteria are checked as a search's
// are, and batch/transaction entries checked the same way (and as the profile would alone).

const core = require('@medplum/core');
const { describeEntry } = require('./profiles.js');
const { HttpError, outcome, queryString } = require('./server-http.js');
const { R4_RESOURCE_TYPES } = require('./server-definitions.js');
const { normalizeSearchParams } = require('./server-search-params.js');
const { profileRefusal, reply, forward, sendRouterResult } = require('./server-context.js');

// Batch and transaction entries reach the router without the HTTP layer's checks: an unknown
// parameter in a conditional PUT/DELETE/PATCH would match nothing and turn a conditional update
// into a create, as the direct request's check (in handleWrite) prevents. Check each entry's
// criteria the same way: a batch answers a bad entry 400 (412 without criteria) and runs the
// others, a transaction fails whole.
async function bundleRequest(ctx, res, url, bundle, headers) {
  const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
  const refused = new Map(); // entry index -> HttpError
  entries.forEach((entry, i) => {
    const refusal = entryRefusal(ctx, entry);
    if (refusal) refused.set(i, refusal);
  });
  if (refused.size === 0) {
    sendRouterResult(ctx, res, await forward(ctx, 'POST', '', url.search.substring(1), bundle, headers));
    return;
  }
  if (bundle.type !== 'batch') {
    throw refused.values().next().value;
  }
  const rest = entries.filter((_, i) => !refused.has(i));
  const answered = rest.length ? await forward(ctx, 'POST', '', url.search.substring(1), { ...bundle, entry: rest }, headers) : undefined;
  if (answered && !core.isOk(answered[0])) {
    sendRouterResult(ctx, res, answered);
    return;
  }
  const others = answered?.[1]?.entry ?? [];
  let next = 0;
  const entry = entries.map((_, i) =>
    refused.has(i) ? { response: { status: String(refused.get(i).status), outcome: refused.get(i).outcome } } : others[next++]
  );
  reply(ctx, res, 200, { resourceType: 'Bundle', type: 'batch-response', entry });
}

// The HttpError a batch or transaction entry answers with instead of reaching the router, if any.
// A conditional PUT/DELETE/PATCH entry's criteria are normalized in place.
function entryRefusal(ctx, entry) {
  // What the profile refuses (a RiskAssessment write, say) answers as it would alone.
  const request = describeEntry(entry);
  const isSearch = request.interaction === 'search' && R4_RESOURCE_TYPES.has(request.type);
  const refusal = profileRefusal(ctx, request) ?? (isSearch ? ctx.profile.checkSearch(request.type, request.params) : undefined);
  if (refusal) {
    return new HttpError(refusal.status, refusal.outcome);
  }
  const target = entry?.request?.url;
  const q = typeof target === 'string' ? target.indexOf('?') : -1;
  if (q < 0 || !['PUT', 'DELETE', 'PATCH'].includes(entry.request.method)) return undefined;
  const resourceType = target.substring(0, q);
  if (!R4_RESOURCE_TYPES.has(resourceType)) return undefined; // the router answers it
  try {
      const criteria = normalizeSearchParams(resourceType, new URLSearchParams(target.substring(q + 1)));
      if (criteria.length === 0) {
        throw new HttpError(412, outcome('error', 'processing', `Conditional ${entry.request.method} needs search criteria`));
      }
      entry.request.url = `${resourceType}?${queryString(criteria)}`;
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    return err;
  }
  return undefined;
}

// A create, a conditional update/delete/patch or an update of `Type/id` (false for anything else).
async function handleWrite(ctx, req, res, { url, path, segments, params, body }) {
  const method = req.method;
  const resourceType = segments[0];
  if (segments.length === 1 && method === 'POST') {
    // Create: the server assigns the id (the router would keep a client-supplied one).
    if (body && typeof body === 'object') {
      delete body.id;
    }
    sendRouterResult(ctx, res, await forward(ctx, method, path, url.search.substring(1), body, req.headers));
    return true;
  }
  if (segments.length === 1 && (method === 'PUT' || method === 'DELETE' || method === 'PATCH')) {
    // Conditional update/delete/patch: the router's own, but unknown parameters must not
    // silently match nothing (which would turn a conditional update into a create).
    const criteria = normalizeSearchParams(resourceType, params);
    if (criteria.length === 0) {
      throw new HttpError(412, outcome('error', 'processing', `Conditional ${method} needs search criteria`));
    }
    sendRouterResult(ctx, res, await forward(ctx, method, path, queryString(criteria), body, req.headers));
    return true;
  }
  if (segments.length === 2 && method === 'PUT') {
    // Update as create answers 201 (the router answers 200).
    let existed = true;
    try {
      await ctx.repo.readResource(resourceType, segments[1]);
    } catch {
      existed = false;
    }
    const result = await forward(ctx, method, path, url.search.substring(1), body, req.headers);
    sendRouterResult(ctx, res, result, !existed && core.isOk(result[0]) ? 201 : undefined);
    return true;
  }
  return false;
}

module.exports = { bundleRequest, handleWrite };
