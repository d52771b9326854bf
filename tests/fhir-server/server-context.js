'use strict';
// What the route families of the FHIR test server (server.js) share. A request is handled with the
// server's `ctx` (server-app.js): its options, repository, router, profile (profiles.js) and
// `lookup` in the store, request counters, search snapshots, Bulk Data export jobs, the fault
// PRNG, the base URL and CapabilityStatement once it listens, the notifier and the log. Here: what
// the profile refuses, answers shaped by the profile, and requests forwarded to Medplum's router.

const core = require('@medplum/core');
const { HttpError, send } = require('./server-http.js');
const { R4_RESOURCE_TYPES } = require('./server-definitions.js');

// What the profile refuses (unknown types answer 404 as in every profile, later).
function profileRefusal(ctx, request) {
  return request.type && !R4_RESOURCE_TYPES.has(request.type) ? undefined : ctx.profile.check(request, ctx.lookup);
}

function refuseIf(refusal) {
  if (refusal) throw new HttpError(refusal.status, refusal.outcome);
}

// Responses that carry resources go out as the profile shapes them.
function reply(ctx, res, status, body, headers = {}) {
  const shaped = ctx.profile.shapeResponse(body, headers);
  send(res, status, shaped.body, shaped.headers);
}

async function forward(ctx, method, path, search, body, headers) {
  const url = search ? `${path}?${search}` : path;
  const request = { method, url, pathname: '', body, params: {}, query: {}, headers };
  return ctx.router.handleRequest(request, ctx.repo);
}

function sendRouterResult(ctx, res, [result, resource], forceStatus) {
  const status = forceStatus ?? core.getStatus(result);
  if (!resource) {
    send(res, status, result);
    return;
  }
  const headers = {};
  if (resource.id && resource.meta?.versionId) {
    headers.ETag = `W/"${resource.meta.versionId}"`;
    if (resource.meta.lastUpdated) {
      headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
    }
    if (status === 201) {
      headers.Location = `${ctx.baseUrl}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
    }
  }
  reply(ctx, res, status, resource, headers);
}

module.exports = { profileRefusal, refuseIf, reply, forward, sendRouterResult };
