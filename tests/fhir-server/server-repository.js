'use strict';
// The FHIR test server's repository (server.js): Medplum's in-memory repository, validating the
// writes that come in over HTTP, telling subscriptions.js of every write, and answering identifier,
// reference and `_lastUpdated` searches from indexes; preloaded with the generated patients.

const core = require('@medplum/core');
const { MemoryRepository } = require('@medplum/fhir-router');
const { patientReference, MRN_SYSTEM } = require('./generate.js');
const { searchParamsOf } = require('./server-definitions.js');

// A reference search value the reference index answers: `Type/id`, one or more.
const REFERENCE_VALUES_RE = /^[A-Z][A-Za-z]*\/[A-Za-z0-9.-]{1,64}(,[A-Z][A-Za-z]*\/[A-Za-z0-9.-]{1,64})*$/;

// MemoryRepository stores whatever it is given. Medplum's server validates every write against
// the FHIR R4 structure definitions; do the same for writes that come in over HTTP (including
// batch/transaction entries and conditional writes), so malformed resources answer 400.
class ValidatingMemoryRepository extends MemoryRepository {
  constructor() {
    super();
    this.validateWrites = false;
    this.deletions = []; // {type, id, at}: the stock repository keeps no history record of a delete
    // `type\0system\0value` -> ids that had that identifier when written. Only candidates: a
    // lookup checks each against the store, so deletes and changed identifiers need no upkeep.
    this.identifierIndex = new Map();
    // `type\0<subject or patient reference>` -> ids that referred to it when written (candidates,
    // checked against the store as above), and `type/id` -> when the id entered the store: the
    // stock search's order (its Map's insertion order). `POST /admin/reference-index` turns the
    // search path off, to compare with the stock answer.
    this.referenceIndex = new Map();
    this.storeOrder = new Map();
    this.stores = 0;
    this.useReferenceIndex = true;
    // Set once preloading is done: checks Subscriptions as they are written and is told of every
    // write, to notify the Subscriptions that match (subscriptions.js).
    this.notifier = undefined;
  }
  indexIdentifiers(resource) {
    for (const i of resource.identifier ?? []) {
      if (typeof i?.system !== 'string' || typeof i.value !== 'string') continue;
      const key = `${resource.resourceType}\0${i.system}\0${i.value}`;
      let ids = this.identifierIndex.get(key);
      if (!ids) this.identifierIndex.set(key, (ids = new Set()));
      ids.add(resource.id);
    }
  }
  indexReferences(resource, isNew) {
    const type = resource.resourceType;
    if (isNew) this.storeOrder.set(`${type}/${resource.id}`, this.stores++);
    for (const ref of [resource.subject, resource.patient].flat()) {
      if (typeof ref?.reference !== 'string') continue;
      const key = `${type}\0${ref.reference}`;
      let ids = this.referenceIndex.get(key);
      if (!ids) this.referenceIndex.set(key, (ids = new Set()));
      ids.add(resource.id);
    }
  }
  async deleteResource(type, id, options) {
    const last = this.resources.get(type)?.get(id);
    await super.deleteResource(type, id, options);
    this.deletions.push({ type, id, at: new Date().toISOString() });
    if (last) {
      this.notifier?.changed('delete', last);
    }
  }
  async createResource(resource, options, update) {
    if (this.validateWrites) {
      core.validateResource(resource);
    }
    if (resource.resourceType === 'Subscription' && this.notifier) {
      resource = this.notifier.accept(resource);
    }
    // Every write but a conditional create (below) stores through here: update and patch too,
    // with `update` set even when the id is new (PUT as create).
    const existed = resource.id !== undefined && !!this.resources.get(resource.resourceType)?.has(resource.id);
    const stored = await super.createResource(resource, options, update);
    this.indexIdentifiers(stored);
    this.indexReferences(stored, !existed);
    this.notifier?.changed(existed ? 'update' : 'create', stored);
    return stored;
  }
  async conditionalCreate(resource, search, options) {
    if (this.validateWrites) {
      core.validateResource(resource);
    }
    if (resource.resourceType === 'Subscription' && this.notifier) {
      resource = this.notifier.accept(resource);
    }
    const result = await super.conditionalCreate(resource, search, options);
    this.indexIdentifiers(result.resource);
    this.indexReferences(result.resource, core.getStatus(result.outcome) === 201);
    if (core.getStatus(result.outcome) === 201) {
      this.notifier?.changed('create', result.resource);
    }
    return result;
  }
  // A search on `identifier=system|value` alone (what a conditional update by identifier runs,
  // twice per batch entry that creates) looks the identifier up in an index instead of
  // evaluating FHIRPath on every stored resource (a quarter of a millisecond each): that made
  // writing 1,000 RiskAssessments take minutes, and even a scan comparing identifiers directly
  // kept writes quadratic (4,000 conditional updates: 1,350/s, against 4,300/s for creates).
  // A search on `_lastUpdated` alone (ranges, `_sort=_lastUpdated`, `_count`, `_offset`: what an
  // incremental sync runs) compares the stored instants directly. The stock in-memory search
  // evaluates FHIRPath on every resource of the type and again in every comparison of its sort,
  // over a second for 5,000 Observations, where an EHR answers from an index. The matches and
  // their order are the same.
  searchSync(search) {
    const filters = search.filters ?? [];
    const sorts = search.sortRules ?? [];
    const ops = { [core.Operator.GREATER_THAN_OR_EQUALS]: (a, b) => a >= b, [core.Operator.GREATER_THAN]: (a, b) => a > b,
      [core.Operator.LESS_THAN_OR_EQUALS]: (a, b) => a <= b, [core.Operator.LESS_THAN]: (a, b) => a < b,
      [core.Operator.STARTS_AFTER]: (a, b) => a > b, [core.Operator.ENDS_BEFORE]: (a, b) => a < b };
    const fast = !search.include?.length && !search.revInclude?.length && search.total === undefined &&
      filters.every((f) => f.code === '_lastUpdated' && ops[f.operator] && !Number.isNaN(Date.parse(f.value)) &&
        !String(f.value).includes(',')) &&
      sorts.every((r) => r.code === '_lastUpdated');
    if (!fast) {
      return this.searchByReferenceIndex(search) ?? super.searchSync(search);
    }
    const bounds = filters.map((f) => [ops[f.operator], Date.parse(f.value)]);
    const matched = [];
    for (const r of this.resources.get(search.resourceType)?.values() ?? []) {
      const at = Date.parse(r.meta?.lastUpdated);
      if (bounds.every(([op, v]) => op(at, v))) matched.push([at, r]);
    }
    for (const rule of sorts) {
      matched.sort((a, b) => (a[0] - b[0]) * (rule.descending ? -1 : 1));
    }
    let page = matched;
    if (search.offset !== undefined) page = page.slice(search.offset);
    if (search.count !== undefined) page = page.slice(0, search.count);
    const entry = page.map(([, r]) => ({ search: { mode: 'match' }, resource: core.deepClone(r) }));
    return { resourceType: 'Bundle', type: 'searchset', entry: entry.length ? entry : undefined, total: matched.length };
  }

  // A search with `patient` or `subject` (any reference parameter that reads only the resource's
  // `subject` or `patient`, `.where(resolve() is Patient)` or not) equal to `Type/id` values (a
  // bare id arrives expanded to them) takes that filter's matches from the reference index, in
  // store order, and runs the stock matcher for the other filters on those alone: the stock
  // search evaluates FHIRPath on every resource of the type, and `patient` is a union over 32
  // types, 0.7 ms a resource. The matches, their order and `total` are the stock search's.
  searchByReferenceIndex(search) {
    const type = search.resourceType;
    const filters = search.filters ?? [];
    if (!this.useReferenceIndex || search.sortRules?.length || filters.some((f) => /\.|^_has/.test(f.code))) return undefined;
    let element; // [, 'subject' or 'patient', '.where(resolve() is Patient)' or undefined]
    const f = filters.find((f) => {
      const param = f.operator === core.Operator.EQUALS && searchParamsOf(type)[f.code];
      if (param?.type !== 'reference' || !REFERENCE_VALUES_RE.test(f.value)) return false;
      const terms = param.expression.split('|').map((t) => t.trim()).filter((t) => t.startsWith(`${type}.`));
      element = terms.length === 1 && /^\w+\.(subject|patient)(\.where\(resolve\(\) is Patient\))?$/.exec(terms[0]);
      return !!element;
    });
    if (!f) return undefined;
    const values = new Set(f.value.split(',').filter((v) => !element[2] || v.startsWith('Patient/')));
    const ids = new Set([...values].flatMap((v) => [...(this.referenceIndex.get(`${type}\0${v}`) ?? [])]));
    const rest = { ...search, filters: filters.filter((g) => g !== f) };
    const stored = this.resources.get(type);
    const refers = (r) => [r[element[1]]].flat().some((ref) => values.has(ref?.reference));
    const order = (r) => this.storeOrder.get(`${type}/${r.id}`);
    const matched = [...ids]
      .map((id) => stored?.get(id))
      .filter((r) => r && refers(r) && core.matchesSearchRequest(r, rest))
      .sort((a, b) => order(a) - order(b));
    let page = matched;
    if (search.offset !== undefined) page = page.slice(search.offset);
    if (search.count !== undefined) page = page.slice(0, search.count);
    const entry = page.map((r) => ({ search: { mode: 'match' }, resource: core.deepClone(r) }));
    return { resourceType: 'Bundle', type: 'searchset', entry: entry.length ? entry : undefined, total: matched.length };
  }

  async searchResources(search) {
    const f = search.filters?.length === 1 && !search.sortRules?.length && !search.offset ? search.filters[0] : undefined;
    const bar = typeof f?.value === 'string' ? f.value.indexOf('|') : -1;
    if (!f || f.code !== 'identifier' || f.operator !== core.Operator.EQUALS || bar <= 0 || f.value.includes(',')) {
      return super.searchResources(search);
    }
    const system = f.value.slice(0, bar);
    const value = f.value.slice(bar + 1);
    const stored = this.resources.get(search.resourceType);
    const out = [];
    for (const id of this.identifierIndex.get(`${search.resourceType}\0${system}\0${value}`) ?? []) {
      if (search.count !== undefined && out.length >= search.count) break;
      if (stored?.get(id)?.identifier?.some((i) => i.system === system && i.value === value)) {
        out.push(await this.readResource(search.resourceType, id));
      }
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Preloading

async function preload(repo, resources) {
  const patientRefs = new Map(); // conditional reference -> Patient/<id>
  const counts = {};
  for (const resource of resources) {
    let toCreate = resource;
    if (resource.resourceType === 'Patient') {
      const mrn = resource.identifier.find((i) => i.system === MRN_SYSTEM).value;
      const created = await repo.createResource(resource);
      patientRefs.set(patientReference(mrn), `Patient/${created.id}`);
    } else {
      const ref = resource.subject?.reference;
      if (ref && patientRefs.has(ref)) {
        toCreate = { ...resource, subject: { ...resource.subject, reference: patientRefs.get(ref) } };
      }
      await repo.createResource(toCreate);
    }
    counts[resource.resourceType] = (counts[resource.resourceType] ?? 0) + 1;
  }
  return counts;
}

// `Group/cohort`: the first `n` preloaded patients (in generation order), written by PUT.
async function createCohort(repo, router, n) {
  const patients = [...(repo.resources.get('Patient')?.keys() ?? [])].slice(0, n);
  const group = {
    resourceType: 'Group',
    id: 'cohort',
    type: 'person',
    actual: true,
    name: 'cohort',
    quantity: patients.length,
    ...(patients.length ? { member: patients.map((id) => ({ entity: { reference: `Patient/${id}` } })) } : undefined),
  };
  const request = { method: 'PUT', url: 'Group/cohort', pathname: '', body: group, params: {}, query: {} };
  const [result] = await router.handleRequest(request, repo);
  if (!core.isOk(result)) throw new Error(`Group/cohort: ${core.operationOutcomeToString(result)}`);
  return patients.length;
}

module.exports = { ValidatingMemoryRepository, preload, createCohort };
