'use strict';
// Search with paging for the FHIR test server (server.js) (gap: the router returns every match with
// no next link, and sorts slowly): the router matches, the server sorts once, keeps the order as a
// snapshot that later pages read (`_snapshot`), and links the pages; `_include` and `_revinclude`
// are added to each page.

const crypto = require('node:crypto');
const core = require('@medplum/core');
const { getExtraEntries } = require('@medplum/fhir-router');
const { DEFAULT_COUNT, MAX_COUNT, HttpError, send, queryString } = require('./server-http.js');
const { normalizeSearchParams, parseNonNegativeInt, parseSortRules, sortResources } = require('./server-search-params.js');
const { refuseIf, reply, forward } = require('./server-context.js');

const SNAPSHOT_TTL_MS = 30 * 60 * 1000;
const MAX_SNAPSHOTS = 256;

class SnapshotCache {
  constructor() {
    this.map = new Map();
  }
  get(token, key) {
    const snap = this.map.get(token);
    if (!snap || snap.key !== key || Date.now() - snap.created > SNAPSHOT_TTL_MS) {
      return undefined;
    }
    return snap;
  }
  add(key, ids) {
    const token = crypto.randomBytes(9).toString('base64url');
    this.map.set(token, { key, ids, created: Date.now() });
    while (this.map.size > MAX_SNAPSHOTS) {
      this.map.delete(this.map.keys().next().value);
    }
    return token;
  }
}

// The page before the one at `offset`, when pages start at 0, then `first`, then every `count`.
function previousOffset(offset, count, first) {
  if (first === count) return Math.max(0, offset - count);
  return offset - count >= first ? offset - count : 0;
}

// A search of `resourceType` (GET, or POST to _search): one page of the matches.
async function search(ctx, res, resourceType, requestParams) {
  const { profile, snapshots, baseUrl } = ctx;
  const params = normalizeSearchParams(resourceType, requestParams);
  refuseIf(profile.checkSearch(resourceType, requestParams));

  const controls = searchControls(params);
  const { offset, summaryCount, sortValues, includeParams, filterParams } = controls;
  let { count, token } = controls;
  const sortRules = parseSortRules(resourceType, sortValues.length ? sortValues : profile.defaultSort(resourceType));
  // The first page may have its own size (`first`); later ones `count`.
  const paging = profile.paging(resourceType, count, controls.counted);
  count = paging.count;
  const size = offset === 0 ? paging.first : count;
  const filterQuery = queryString(filterParams);
  const snapshotKey = `${resourceType}?${filterQuery}#${sortValues.join(',')}`;

  const snap = token ? snapshots.get(token, snapshotKey) : undefined;
  let fresh; // resources of a search run by this request, in order
  if (!snap) {
    fresh = await runSearch(ctx, resourceType, filterQuery, sortRules);
    token = undefined;
  }
  const total = snap ? snap.ids.length : fresh.length;

  const self = `${baseUrl}/${resourceType}?${queryString(requestParams)}`;
  if (summaryCount || count === 0) {
    send(res, 200, { resourceType: 'Bundle', type: 'searchset', total, link: [{ relation: 'self', url: self }] });
    return;
  }

  const page = fresh
    ? fresh.slice(offset, offset + size)
    : await snapshotPage(ctx.repo, resourceType, snap.ids.slice(offset, offset + size));
  const hasNext = offset + size < total;
  if (hasNext && !token) {
    token = snapshots.add(snapshotKey, fresh.map((r) => r.id));
  }
  const link = pageLinks(`${baseUrl}/${resourceType}`, self,
    { filterParams, includeParams, sortValues, count, offset, size, first: paging.first, token, hasNext });
  reply(ctx, res, 200, await pageBundle(ctx, resourceType, { page, total, link, includeParams }));
}

// The parameters of a search that control its result set (`_count`, `_offset`, `_snapshot`,
// `_sort`, `_summary=count`, `_include`, `_revinclude`), and its filters.
function searchControls(params) {
  let count = DEFAULT_COUNT;
  let counted = false;
  let offset = 0;
  let token;
  let summaryCount = false;
  const sortValues = [];
  const includeParams = [];
  const filterParams = [];
  for (const [key, value] of params) {
    const base = key.split(':')[0];
    if (base === '_count') {
      count = Math.min(parseNonNegativeInt('_count', value), MAX_COUNT);
      counted = true;
    } else if (base === '_offset') {
      offset = parseNonNegativeInt('_offset', value);
    } else if (base === '_snapshot') {
      token = value;
    } else if (base === '_sort') {
      sortValues.push(value);
    } else if (base === '_summary' && value === 'count') {
      summaryCount = true;
    } else if (base === '_include' || base === '_revinclude') {
      includeParams.push([key, value]);
    } else if (base === '_' || base === '_format' || base === '_pretty' || base === '_total') {
      // no effect on the result set
    } else {
      filterParams.push([key, value]);
    }
  }
  return { count, counted, offset, token, summaryCount, sortValues, includeParams, filterParams };
}

// The matches of a search, in the order its sort rules give.
async function runSearch(ctx, resourceType, filterQuery, sortRules) {
  // The router matches; without _count it returns every match.
  const [result, bundle] = await forward(ctx, 'GET', resourceType, filterQuery, undefined, undefined);
  if (!core.isOk(result)) {
    throw new HttpError(core.getStatus(result), result);
  }
  let fresh = (bundle.entry ?? []).map((e) => e.resource);
  if (sortRules.length) {
    fresh = sortResources(fresh, sortRules);
  }
  return fresh;
}

// The resources of a page of a snapshot that still exist.
async function snapshotPage(repo, resourceType, ids) {
  const page = [];
  for (const id of ids) {
    try {
      page.push(await repo.readResource(resourceType, id));
    } catch {
      // deleted since the search ran
    }
  }
  return page;
}

// The links of a page: self, first, previous (after the first page) and next (when there is one).
function pageLinks(typeUrl, self, { filterParams, includeParams, sortValues, count, offset, size, first, token, hasNext }) {
  const sortParam = sortValues.length ? [['_sort', sortValues.join(',')]] : [];
  const pageLink = (pageOffset, withToken) =>
    `${typeUrl}?${queryString([
      ...filterParams,
      ...includeParams,
      ...sortParam,
      ['_count', String(count)],
      ...(pageOffset > 0 ? [['_offset', String(pageOffset)]] : []),
      ...(withToken && token ? [['_snapshot', token]] : []),
    ])}`;
  const link = [
    { relation: 'self', url: self },
    { relation: 'first', url: pageLink(0, false) },
  ];
  if (offset > 0) {
    link.push({ relation: 'previous', url: pageLink(previousOffset(offset, count, first), true) });
  }
  if (hasNext) {
    link.push({ relation: 'next', url: pageLink(offset + size, true) });
  }
  return link;
}

// The searchset Bundle of a page, with what `_include` and `_revinclude` add.
async function pageBundle(ctx, resourceType, { page, total, link, includeParams }) {
  const fullUrl = (type, id) => `${ctx.baseUrl}/${type}/${id}`;
  const entry = page.map((resource) => ({
    fullUrl: fullUrl(resource.resourceType, resource.id),
    resource,
    search: { mode: 'match' },
  }));
  if (includeParams.length && page.length) {
    const includeRequest = core.parseSearchRequest(`${resourceType}?${queryString(includeParams)}`);
    await getExtraEntries(ctx.repo, includeRequest, page, entry, { fullUrl });
  }
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total,
    link,
    ...(entry.length ? { entry } : undefined),
  };
}

module.exports = { SnapshotCache, search };
