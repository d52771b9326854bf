'use strict';
// Search parameters of the FHIR test server (server.js): checked against the definitions and
// normalized for the in-memory matcher (unknown or unsupported ones answer 400 instead of an empty
// result), Subscription criteria checked the same way, and `_sort` rules and the sort itself.

const core = require('@medplum/core');
const { HttpError, badRequest } = require('./server-http.js');
const { R4_RESOURCE_TYPES, searchParamsOf } = require('./server-definitions.js');

// Search parameters that control the result set rather than filter it.
const CONTROL_PARAMS = new Set([
  '_count',
  '_offset',
  '_snapshot',
  '_sort',
  '_total',
  '_summary',
  '_elements',
  '_fields',
  '_include',
  '_revinclude',
  '_format',
  '_pretty',
  '_',
]);
// Standard parameters the in-memory repository would silently ignore or never match: refuse them.
const UNSUPPORTED_PARAMS = new Set([
  '_has',
  '_text',
  '_content',
  '_list',
  '_query',
  '_filter',
  '_contained',
  '_containedType',
  '_cursor',
  '_type',
]);

// Modifiers the in-memory matcher does not implement (it would silently match nothing or all).
const UNSUPPORTED_MODIFIERS = new Set(['text', 'in', 'not-in', 'above', 'below', 'of-type', 'identifier', 'iterate']);
// Parameter types the in-memory matcher does not implement (number and quantity never match).
const UNSUPPORTED_PARAM_TYPES = new Set(['number', 'quantity', 'composite', 'special']);

// Checks the search parameters against the definitions and returns them normalized for the
// in-memory matcher: unknown or unsupported parameters answer 400 instead of an empty result,
// and reference values given as a bare id or with a :Type modifier become Type/id.
function normalizeSearchParams(resourceType, params) {
  const known = searchParamsOf(resourceType);
  const result = [];
  for (const [key, value] of params) {
    const colon = key.indexOf(':');
    const code = (colon < 0 ? key : key.substring(0, colon)).split('.')[0];
    const modifier = colon < 0 ? '' : key.substring(colon + 1);
    if (CONTROL_PARAMS.has(code)) {
      result.push([key, value]);
      continue;
    }
    if (UNSUPPORTED_PARAMS.has(code)) {
      throw badRequest(`Search parameter "${key}" is not supported by this server`);
    }
    const param = known[code];
    if (!param) {
      throw badRequest(`Unknown search parameter "${key}" for resource type ${resourceType}`);
    }
    if (key.includes('.')) {
      result.push([key, value]); // chained search: the repository resolves it
      continue;
    }
    if (UNSUPPORTED_PARAM_TYPES.has(param.type) && modifier !== 'missing') {
      throw badRequest(`Search parameter "${key}" (type ${param.type}) is not supported by this server`);
    }
    if (UNSUPPORTED_MODIFIERS.has(modifier)) {
      throw badRequest(`Search modifier ":${modifier}" is not supported by this server`);
    }
    if (param.type === 'reference' && modifier !== 'missing') {
      const targets = R4_RESOURCE_TYPES.has(modifier) ? [modifier] : modifier ? undefined : param.target ?? [];
      if (targets === undefined) {
        throw badRequest(`Search modifier ":${modifier}" is not supported by this server`);
      }
      const values = value.split(',').flatMap((v) =>
        v.includes('/') || v.includes(':') || targets.length === 0 ? [v] : targets.map((t) => `${t}/${v}`)
      );
      result.push([code, values.join(',')]);
      continue;
    }
    result.push([key, value]);
  }
  return result;
}

// Subscription criteria (and backport filters) are searches checked like any other, but only
// filters: no result controls, and no chains (the matcher sees one resource at a time). Throws
// OperationOutcomeError, which the router answers with 400.
function subscriptionCriteria(resourceType, params) {
  if (!R4_RESOURCE_TYPES.has(resourceType)) {
    throw new core.OperationOutcomeError(core.badRequest(`Unknown resource type "${resourceType}"`));
  }
  let normalized;
  try {
    normalized = normalizeSearchParams(resourceType, params);
  } catch (err) {
    throw err instanceof HttpError ? new core.OperationOutcomeError(err.outcome) : err;
  }
  for (const [key] of normalized) {
    if (CONTROL_PARAMS.has(key.split(':')[0]) || key.includes('.')) {
      throw new core.OperationOutcomeError(core.badRequest(`Search parameter "${key}" cannot be used in Subscription criteria`));
    }
  }
  return normalized;
}

function parseNonNegativeInt(name, value) {
  if (!/^\d+$/.test(value)) {
    throw badRequest(`Invalid ${name}: ${value}`);
  }
  return Number.parseInt(value, 10);
}

function parseSortRules(resourceType, values) {
  const known = searchParamsOf(resourceType);
  const rules = [];
  for (const value of values) {
    for (const field of value.split(',')) {
      if (!field) {
        continue;
      }
      const descending = field.startsWith('-');
      const code = descending ? field.substring(1) : field;
      if (!known[code]) {
        throw badRequest(`Unknown sort parameter "${code}" for resource type ${resourceType}`);
      }
      rules.push({ code, descending, param: known[code] });
    }
  }
  return rules;
}

const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;

function sortValue(value) {
  if (value === undefined || value === null) {
    return null;
  }
  if (typeof value === 'number' || typeof value === 'boolean') {
    return Number(value);
  }
  if (typeof value === 'string') {
    if (DATE_TIME_RE.test(value)) {
      const ms = Date.parse(value);
      return Number.isNaN(ms) ? value : ms;
    }
    return value.toLowerCase();
  }
  if (typeof value === 'object') {
    if ('start' in value || 'end' in value) {
      return sortValue(value.start ?? value.end); // Period
    }
    if ('value' in value && typeof value.value === 'number') {
      return value.value; // Quantity
    }
    if ('family' in value || 'given' in value) {
      return sortValue([value.family, ...(value.given ?? [])].filter(Boolean).join(' ')); // HumanName
    }
    if (Array.isArray(value.coding)) {
      return sortValue(value.coding[0]?.code ?? value.text); // CodeableConcept
    }
    if ('code' in value) {
      return sortValue(value.code); // Coding
    }
    if ('reference' in value) {
      return sortValue(value.reference);
    }
    if ('value' in value) {
      return sortValue(value.value); // Identifier
    }
  }
  return JSON.stringify(value);
}

function sortKey(resource, rule) {
  if (rule.code === '_lastUpdated') {
    return sortValue(resource.meta?.lastUpdated);
  }
  if (rule.code === '_id') {
    return resource.id;
  }
  const values = core.evalFhirPath(rule.param.expression, resource);
  return values.length ? sortValue(values[0]) : null;
}

function compareValues(a, b) {
  if (a === b) {
    return 0;
  }
  if (a === null) {
    return 1; // missing values last
  }
  if (b === null) {
    return -1;
  }
  if (typeof a !== typeof b) {
    return typeof a === 'number' ? -1 : 1;
  }
  return a < b ? -1 : 1;
}

// Sorts once per search: each key is computed once per resource, the first rule is the primary
// one, and the resource id breaks ties so the order is total and stable.
function sortResources(resources, rules) {
  const keyed = resources.map((r) => ({ r, keys: rules.map((rule) => sortKey(r, rule)) }));
  keyed.sort((a, b) => {
    for (let i = 0; i < rules.length; i++) {
      const c = compareValues(a.keys[i], b.keys[i]);
      if (c !== 0) {
        return rules[i].descending ? -c : c;
      }
    }
    return a.r.id < b.r.id ? -1 : a.r.id > b.r.id ? 1 : 0;
  });
  return keyed.map((k) => k.r);
}

module.exports = { normalizeSearchParams, subscriptionCriteria, parseNonNegativeInt, parseSortRules, sortResources };
