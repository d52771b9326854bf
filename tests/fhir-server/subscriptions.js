'use strict';
// R4 rest-hook Subscriptions for the FHIR test server: the router stores Subscription resources
// but notifies nobody. The repository reports each write here (create, update, delete); every
// active Subscription whose criteria match gets a POST to its channel.endpoint, after the write
// has answered, retried on failure.
//
// Two shapes of Subscription are accepted:
// - plain R4: `criteria` is a search (`Observation?category=vital-signs`); without
//   channel.payload the POST has an empty body, with application/fhir+json it carries a history
//   Bundle holding the resource;
// - the Subscriptions R5 Backport IG (R4 profile): `criteria` is a SubscriptionTopic canonical URL
//   (only TOPIC_URL here), filters in criteria's backport-filter-criteria extensions, and the
//   content (empty | id-only | full-resource) in channel.payload's backport-payload-content
//   extension; the POST carries a history Bundle whose first entry is a SubscriptionStatus
//   Parameters resource.
// No handshake, heartbeat, $status or $events: a Subscription is active as soon as it is stored.

const crypto = require('node:crypto');
const http = require('node:http');
const https = require('node:https');
const core = require('@medplum/core');

const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport';
const FILTER_CRITERIA_URL = `${BACKPORT}/StructureDefinition/backport-filter-criteria`;
const PAYLOAD_CONTENT_URL = `${BACKPORT}/StructureDefinition/backport-payload-content`;
const TOPIC_URL = 'http://fhir-risk-adapter.test/SubscriptionTopic/clinical-data';
// The topics this server offers: which resource types and which interactions trigger them.
const TOPICS = new Map([
  [TOPIC_URL, { types: ['Patient', 'Observation', 'Encounter', 'Condition'], actions: ['create', 'update', 'delete'] }],
]);
const JSON_PAYLOADS = new Set(['application/fhir+json', 'application/json']);
const CONTENTS = new Set(['empty', 'id-only', 'full-resource']);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

const ATTEMPTS = 3; // the first try and two retries
const RETRY_DELAYS_MS = [250, 1000];
const TIMEOUT_MS = 5000;
const MAX_QUEUE = 10000; // per Subscription; later events are dropped (and counted)

const bad = (text) => new core.OperationOutcomeError(core.badRequest(text));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// POSTs `body` (a string, or undefined for an empty body) and resolves with the status code once
// the answer is read; rejects on a connection error or after TIMEOUT_MS. Plain node http rather
// than fetch, which refuses the "bad ports" of the Fetch standard (6000, 6665-6669, ...).
function postNotification(endpoint, headers, body) {
  return new Promise((resolve, reject) => {
    const url = new URL(endpoint);
    const payload = Buffer.from(body ?? '', 'utf8');
    const request = (url.protocol === 'https:' ? https : http).request(url, {
      method: 'POST',
      headers: { ...headers, 'Content-Length': payload.length },
    });
    const timer = setTimeout(() => request.destroy(Object.assign(new Error('no answer in time'), { code: 'TIMEOUT' })), TIMEOUT_MS);
    request.on('response', (response) => {
      response.resume();
      response.on('end', () => {
        clearTimeout(timer);
        resolve(response.statusCode);
      });
      response.on('error', reject);
    });
    request.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    request.end(payload);
  });
}

// Adds what a client looks for to detect topic-based (backport) subscriptions: the IG's server
// CapabilityStatement, the backport Subscription profile, and the topics offered.
function decorateCapabilityStatement(statement) {
  statement.instantiates = [`${BACKPORT}/CapabilityStatement/backport-subscription-server-r4`];
  statement.implementationGuide = [`${BACKPORT}/ImplementationGuide/hl7.fhir.uv.subscriptions-backport`];
  const subscription = statement.rest[0].resource.find((r) => r.type === 'Subscription');
  subscription.supportedProfile = [`${BACKPORT}/StructureDefinition/backport-subscription`];
  subscription.extension = [...TOPICS.keys()].map((url) => ({
    url: `${BACKPORT}/StructureDefinition/capabilitystatement-subscriptiontopic-canonical`,
    valueCanonical: url,
  }));
  return statement;
}

// The parts of a Subscription that delivery needs, checked: throws OperationOutcomeError (the
// router answers 400) for what this server cannot honour, so a client learns it at once.
// `checkCriteria(type, params)` validates a search the way the server's searches are validated.
function compile(sub, checkCriteria) {
  const channel = sub.channel ?? {};
  if (channel.type !== 'rest-hook') {
    throw bad(`Subscription.channel.type "${channel.type}" is not supported: this server delivers rest-hook only`);
  }
  let endpoint;
  try {
    endpoint = new URL(channel.endpoint);
  } catch {
    endpoint = undefined;
  }
  if (endpoint?.protocol !== 'http:' && endpoint?.protocol !== 'https:') {
    throw bad('Subscription.channel.endpoint must be an http or https URL');
  }
  const headers = (channel.header ?? []).map((h, i) => {
    const colon = typeof h === 'string' ? h.indexOf(':') : -1;
    const name = colon > 0 ? h.slice(0, colon).trim() : '';
    if (!HEADER_NAME.test(name) || !HEADER_VALUE.test(h.slice(colon + 1))) {
      throw bad(`Subscription.channel.header[${i}] must read "Name: value"`);
    }
    return [name, h.slice(colon + 1).trim()];
  });
  if (channel.payload !== undefined && !JSON_PAYLOADS.has(channel.payload)) {
    throw bad(`Subscription.channel.payload "${channel.payload}" is not supported: use application/fhir+json or leave it out`);
  }
  const parse = (text, where) => parseCriteria(text, where, checkCriteria);
  const compiled = { endpoint: endpoint.href, headers, payload: channel.payload };
  if (typeof sub.criteria !== 'string' || sub.criteria === '') {
    throw bad('Subscription.criteria is required');
  }
  const topic = TOPICS.get(sub.criteria);
  if (topic) {
    const filters = (sub._criteria?.extension ?? [])
      .filter((e) => e.url === FILTER_CRITERIA_URL)
      .map((e) => parse(e.valueString, 'backport-filter-criteria'));
    for (const f of filters) {
      if (!topic.types.includes(f.type)) {
        throw bad(`backport-filter-criteria: topic ${sub.criteria} covers ${topic.types.join(', ')}, not ${f.type}`);
      }
    }
    const content = channel._payload?.extension?.find((e) => e.url === PAYLOAD_CONTENT_URL)?.valueCode ?? 'id-only';
    if (!CONTENTS.has(content)) {
      throw bad(`backport-payload-content "${content}" is not one of ${[...CONTENTS].join(', ')}`);
    }
    // Filters on the same resource type must all match (R5 filterBy semantics); a type without
    // filters always matches.
    compiled.matches = (action, resource) =>
      topic.actions.includes(action) &&
      topic.types.includes(resource.resourceType) &&
      filters.every((f) => f.type !== resource.resourceType || f.matches(resource));
    compiled.topic = sub.criteria;
    compiled.content = content;
    compiled.payload ??= 'application/fhir+json';
    return compiled;
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(sub.criteria)) {
    throw bad(`Unknown SubscriptionTopic "${sub.criteria}"; this server offers ${[...TOPICS.keys()].join(', ')}`);
  }
  const criteria = parse(sub.criteria, 'Subscription.criteria');
  compiled.matches = (action, resource) => resource.resourceType === criteria.type && criteria.matches(resource);
  return compiled;
}

// `Type` or `Type?params`: a predicate on resources of that type, by the repository's own matcher.
function parseCriteria(text, where, checkCriteria) {
  if (typeof text !== 'string' || text === '') {
    throw bad(`${where}: expected Type or Type?parameters`);
  }
  const q = text.indexOf('?');
  const type = q < 0 ? text : text.slice(0, q);
  let params;
  try {
    params = checkCriteria(type, [...new URLSearchParams(q < 0 ? '' : text.slice(q + 1))]);
  } catch (err) {
    const detail = err instanceof core.OperationOutcomeError ? core.operationOutcomeToString(err.outcome) : err.message;
    throw bad(`${where}: ${detail}`);
  }
  if (params.length === 0) {
    return { type, matches: () => true };
  }
  const search = core.parseSearchRequest(`${type}?${new URLSearchParams(params)}`);
  return { type, matches: (resource) => core.matchesSearchRequest(resource, search) };
}

// One entry of a history Bundle for a write, the way this server's _history lists it.
function historyEntry(baseUrl, event) {
  const { action, resource, at } = event;
  const ref = `${resource.resourceType}/${resource.id}`;
  const entry = { fullUrl: `${baseUrl}/${ref}` };
  if (action !== 'delete') {
    entry.resource = resource;
  }
  entry.request = action === 'create' ? { method: 'POST', url: resource.resourceType } : { method: action === 'update' ? 'PUT' : 'DELETE', url: ref };
  entry.response = {
    status: { create: '201', update: '200', delete: '410' }[action],
    lastModified: action === 'delete' ? at : resource.meta?.lastUpdated ?? at,
  };
  return entry;
}

// The notification for one event: undefined for an empty-body POST.
function notificationBody(baseUrl, sub, compiled, event) {
  const bundle = (meta, entry) => ({
    resourceType: 'Bundle',
    id: crypto.randomUUID(),
    ...(meta ? { meta } : undefined),
    type: 'history',
    timestamp: new Date().toISOString(),
    entry,
  });
  if (!compiled.topic) {
    return compiled.payload ? bundle(undefined, [historyEntry(baseUrl, event)]) : undefined;
  }
  const subscriptionUrl = `${baseUrl}/Subscription/${sub.id}`;
  const focus = `${baseUrl}/${event.resource.resourceType}/${event.resource.id}`;
  const statusId = crypto.randomUUID();
  const status = {
    fullUrl: `urn:uuid:${statusId}`,
    resource: {
      resourceType: 'Parameters',
      id: statusId,
      meta: { profile: [`${BACKPORT}/StructureDefinition/backport-subscription-status-r4`] },
      parameter: [
        { name: 'subscription', valueReference: { reference: subscriptionUrl } },
        { name: 'topic', valueCanonical: compiled.topic },
        { name: 'status', valueCode: 'active' },
        { name: 'type', valueCode: 'event-notification' },
        { name: 'events-since-subscription-start', valueString: String(event.number) },
        {
          name: 'notification-event',
          part: [
            { name: 'event-number', valueString: String(event.number) },
            { name: 'timestamp', valueInstant: event.at },
            ...(compiled.content === 'empty' ? [] : [{ name: 'focus', valueReference: { reference: focus } }]),
          ],
        },
      ],
    },
    request: { method: 'GET', url: `${subscriptionUrl}/$status` },
    response: { status: '200' },
  };
  return bundle(
    { profile: [`${BACKPORT}/StructureDefinition/backport-subscription-notification-r4`] },
    compiled.content === 'full-resource' ? [status, historyEntry(baseUrl, event)] : [status]
  );
}

class Notifier {
  /// repo: the repository whose Subscription resources are the registrations; baseUrl(): the
  /// server's FHIR base; log(msg): the --verbose log; checkCriteria(type, params): see compile.
  constructor({ repo, baseUrl, log, checkCriteria }) {
    this.repo = repo;
    this.baseUrl = baseUrl;
    this.log = log;
    this.checkCriteria = checkCriteria;
    this.enabled = true;
    this.counters = { sent: 0, failed: 0, dropped: 0, retries: 0 };
    this.states = new Map(); // Subscription id -> {events, sent, failed, queue, busy, lastError}
    this.compiled = new Map(); // `${id}/${versionId}` -> compile() result
  }

  /// The Subscription to store for a create or update: status requested or active becomes
  /// active. Throws OperationOutcomeError when the server cannot deliver what it asks for.
  accept(sub) {
    compile(sub, this.checkCriteria);
    return sub.status === 'requested' || sub.status === 'active' ? { ...sub, status: 'active' } : sub;
  }

  /// Called by the repository after a write is stored (`resource`: the stored version, or for a
  /// delete the last one). Queues a notification for each active Subscription that matches;
  /// delivery runs later and never delays the write.
  changed(action, resource) {
    if (resource.resourceType === 'Subscription' && action === 'delete') {
      this.forget(resource.id);
    }
    const subs = this.repo.resources.get('Subscription');
    if (!subs?.size) {
      return;
    }
    const at = new Date().toISOString();
    for (const sub of subs.values()) {
      if (!this.active(sub)) continue;
      const compiled = this.compile(sub);
      if (!compiled?.matches(action, resource)) continue;
      const state = this.state(sub.id);
      state.events += 1; // counted while delivery is off too: backport clients see the gap
      if (!this.enabled || state.queue.length >= MAX_QUEUE) {
        this.counters.dropped += 1;
        continue;
      }
      const event = { number: state.events, action, resource, at };
      const body = notificationBody(this.baseUrl(), sub, compiled, event);
      state.queue.push({ event, body: body === undefined ? undefined : JSON.stringify(body) });
      if (!state.busy) {
        state.busy = true;
        setImmediate(() =>
          this.pump(sub.id, state).catch((err) => process.stderr.write(`fhir-test-server: notify: ${err?.stack ?? err}\n`))
        );
      }
    }
  }

  /// POST /admin/notifications {"enabled": bool} and GET /admin/notifications: the switch and
  /// the counters.
  admin(body) {
    if (body !== undefined) {
      if (typeof body?.enabled !== 'boolean') {
        throw bad('expected {"enabled": true} or {"enabled": false}');
      }
      this.enabled = body.enabled;
      this.log(`notifications ${this.enabled ? 'enabled' : 'disabled'}`);
    }
    const subscriptions = [];
    let pending = 0;
    for (const sub of this.repo.resources.get('Subscription')?.values() ?? []) {
      const s = this.states.get(sub.id);
      pending += s?.queue.length ?? 0;
      subscriptions.push({
        id: sub.id,
        status: this.active(sub) ? 'active' : sub.status,
        criteria: sub.criteria,
        events: s?.events ?? 0,
        sent: s?.sent ?? 0,
        failed: s?.failed ?? 0,
        ...(s?.lastError ? { lastError: s.lastError } : undefined),
      });
    }
    return { enabled: this.enabled, ...this.counters, pending, subscriptions };
  }

  active(sub) {
    return sub.status === 'active' && (!sub.end || Date.parse(sub.end) > Date.now());
  }

  compile(sub) {
    const key = `${sub.id}/${sub.meta?.versionId}`;
    if (!this.compiled.has(key)) {
      let compiled;
      try {
        compiled = compile(sub, this.checkCriteria);
      } catch (err) {
        // accept() checked every Subscription written over HTTP, so this means a bug: log it and
        // leave that Subscription silent rather than fail someone else's write.
        compiled = undefined;
        this.log(`Subscription/${sub.id}: ignored: ${err.message}`);
      }
      this.compiled.set(key, compiled);
    }
    return this.compiled.get(key);
  }

  state(id) {
    let s = this.states.get(id);
    if (!s) {
      s = { events: 0, sent: 0, failed: 0, queue: [], busy: false, lastError: undefined };
      this.states.set(id, s);
    }
    return s;
  }

  forget(id) {
    const s = this.states.get(id);
    if (s) {
      this.counters.dropped += s.queue.length;
      s.queue.length = 0;
      this.states.delete(id);
    }
    for (const key of this.compiled.keys()) {
      if (key.startsWith(`${id}/`)) this.compiled.delete(key);
    }
  }

  // Delivers one Subscription's notifications in event order, one at a time.
  async pump(id, state) {
    try {
      while (state.queue.length) {
        await this.deliver(id, state, state.queue.shift());
      }
    } finally {
      state.busy = false;
    }
  }

  // Whether a queued notification should still go out, and to where (read at each attempt, so a
  // deleted or switched-off Subscription and the admin switch stop it at once).
  target(id) {
    const sub = this.repo.resources.get('Subscription')?.get(id);
    return this.enabled && sub && this.active(sub) ? this.compile(sub) : undefined;
  }

  async deliver(id, state, { event, body }) {
    const what = `Subscription/${id} event ${event.number} (${event.action} ${event.resource.resourceType}/${event.resource.id})`;
    for (let attempt = 1; ; attempt++) {
      const compiled = this.target(id);
      if (!compiled) {
        this.counters.dropped += 1;
        this.log(`notify ${what}: dropped (delivery off or Subscription inactive)`);
        return;
      }
      const started = Date.now();
      let error;
      let retryable = true; // connection errors, timeouts, 408, 429, 5xx; other answers are final
      try {
        const headers = {};
        for (const [name, value] of compiled.headers) {
          headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
        }
        if (body !== undefined) headers['Content-Type'] = compiled.payload;
        const status = await postNotification(compiled.endpoint, headers, body);
        if (status >= 200 && status < 300) {
          state.sent += 1;
          this.counters.sent += 1;
          this.log(`notify ${what} -> ${status} ${Date.now() - started} ms`);
          return;
        }
        error = `HTTP ${status}`;
        retryable = status === 408 || status === 429 || status >= 500;
      } catch (err) {
        error = err.code ?? err.message ?? String(err);
      }
      state.lastError = error;
      if (attempt >= ATTEMPTS || !retryable) {
        state.failed += 1;
        this.counters.failed += 1;
        this.log(`notify ${what}: attempt ${attempt} failed (${error}); giving up`);
        return;
      }
      const delay = RETRY_DELAYS_MS[attempt - 1];
      this.log(`notify ${what}: attempt ${attempt} failed (${error}); retrying in ${delay} ms`);
      this.counters.retries += 1;
      await sleep(delay);
    }
  }
}

module.exports = { Notifier, decorateCapabilityStatement, TOPIC_URL, FILTER_CRITERIA_URL, PAYLOAD_CONTENT_URL };
