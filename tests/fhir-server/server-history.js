'use strict';
// Type-level history for the FHIR test server (server.js), which the stock router lacks: every
// version and every delete of a type since `_since`, newest first, paged with `_count` and
// `_offset`. Reads, vreads and instance history are the router's own.

const { DEFAULT_COUNT, MAX_COUNT, send } = require('./server-http.js');
const { smartAuthorized } = require('./server-smart.js');

// GET <type>/_history, once authorized (false for any other request).
function handleTypeHistory(ctx, req, res, url, refuseByProfile) {
  const { baseUrl } = ctx;
  const history = /^\/fhir\/R4\/([A-Za-z]+)\/_history$/.exec(url.pathname);
  if (!(history && req.method === 'GET' && smartAuthorized(req))) return false;
  refuseByProfile();
  const type = history[1];
  const since = url.searchParams.get('_since') ?? '';
  const count = Math.min(Number(url.searchParams.get('_count') ?? DEFAULT_COUNT), MAX_COUNT);
  const offset = Number(url.searchParams.get('_offset') ?? 0);
  const entries = historyEntries(ctx, type, since);
  const page = entries.slice(offset, offset + count).map((e) => e.entry);
  const link = [{ relation: 'self', url: `${baseUrl}/${type}/_history?${url.searchParams}` }];
  if (offset + count < entries.length) {
    const next = new URLSearchParams(url.searchParams);
    next.set('_offset', String(offset + count));
    next.set('_count', String(count));
    link.push({ relation: 'next', url: `${baseUrl}/${type}/_history?${next}` });
  }
  send(res, 200, { resourceType: 'Bundle', type: 'history', total: entries.length, link, entry: page });
  return true;
}

// The history entries of `type` since `since`, newest first.
function historyEntries(ctx, type, since) {
  const { repo, baseUrl } = ctx;
  const entries = [];
  for (const [id, versions] of repo.history.get(type) ?? []) {
    versions.forEach((v, i) => {
      if (v.meta.lastUpdated >= since) {
        entries.push({ at: v.meta.lastUpdated, entry: { fullUrl: `${baseUrl}/${type}/${id}`, resource: v,
          request: { method: i === 0 ? 'POST' : 'PUT', url: `${type}/${id}` },
          response: { status: i === 0 ? '201' : '200', lastModified: v.meta.lastUpdated } } });
      }
    });
  }
  for (const d of repo.deletions) {
    if (d.type === type && d.at >= since) {
      entries.push({ at: d.at, entry: { fullUrl: `${baseUrl}/${type}/${d.id}`,
        request: { method: 'DELETE', url: `${type}/${d.id}` }, response: { status: '410', lastModified: d.at } } });
    }
  }
  entries.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  return entries;
}

module.exports = { handleTypeHistory };
