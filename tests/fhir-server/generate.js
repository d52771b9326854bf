'use strict';
// Deterministic synthetic-patient generator for the FHIR test server.
//
// generate({ patients, seed, shift }) returns FHIR R4 resources (Patient, Encounter, Observation,
// Condition) in creation order: each Patient is followed by its Encounters, Observations and
// Conditions. The resources carry no ids; dependents point at their patient with a conditional
// reference `Patient?identifier=<MRN system>|<MRN>`, which the server replaces by
// `Patient/<assigned id>` when it creates them (and which `toTransactionBundle` turns into
// urn:uuid references). Nothing refers to an Encounter.
//
// About 30% of the patients come "from Synthea" (README.md, "Synthetic data"):
// their data has the shapes real Synthea output has (blood pressure as panel 55284-4 with the
// diastolic component first, oral temperature 8331-1, `+00:00` offsets, PHI in
// Encounter.subject.display, US Core meta.profile, SNOMED-coded Conditions...). The others look
// as they always did, with a few of those shapes sprinkled in, so that both kinds occur.
//
// The outcome (another inpatient stay within 30 days of a discharge) is drawn at each discharge
// from a logistic model of what the data holds as of that discharge (READMISSION_MODEL in
// generate-outcome.js), read back from the very resources generated, so that a model trained on
// the adapter's features as of the discharge can learn it.
//
// `shift: true` (for testing drift monitoring) gives the same population shifted on purpose in
// three ways and no other (SHIFT in generate-shift.js): 15 years older (birthDate, an age of at
// most 100), sicker (heart failure, COPD, CKD, diabetes with complications, cancer and dementia
// drawn a second time from ten times the odds for those who lack them: an extra active Condition
// each), and measured by another pulse oximeter (every SpO2, 59408-5/2708-6, 3 points lower).
// Everything else is drawn exactly as without it, from the same draws: the same patients, sexes,
// encounters, stays, vital signs, weights, smoking statuses, deaths and outcomes (those follow the
// unshifted age and diseases: the shift is applied once a patient's care is drawn, from a random
// generator of its own). Without `shift` the output is what it always was, byte for byte.
//
// The parts are in generate-*.js: codes, common helpers, patients, conditions, observations,
// encounters, a patient's care, the outcome and the shift.
//
// Run as a program, it prints the data as a FHIR transaction Bundle:
//   node generate.js --patients N --seed S [--shift]

const {
  MRN_SYSTEM, SMOKING_STATUS, SMOKING_ANSWERS, CURRENT_SMOKER_CODES, hasLoinc, COMORBIDITIES, CATEGORY_OF,
} = require('./generate-codes.js');
const {
  REFERENCE_DATE, DAY_MS, HISTORY_START, HISTORY_END, mulberry32, makeRandom, logistic, patientReference, makeUuid,
} = require('./generate-common.js');
const { practitionerName, makePatient, patientResource, drawSmoking } = require('./generate-patients.js');
const { drawDisease, diseaseRecords, conditionResource } = require('./generate-conditions.js');
const { makeCare } = require('./generate-care.js');
const { READMISSION_MODEL, readmissionProbability, comorbiditiesAt, riskFactorsAt } = require('./generate-outcome.js');
const { SHIFT, olderDemo, shiftedConditions, lowerSpo2 } = require('./generate-shift.js');

/**
 * Generates the synthetic data set.
 * @param {{patients?: number, seed?: number, shift?: boolean}} options `shift`: the population
 *   shifted on purpose (SHIFT: older, sicker, SpO2 lower), everything else the same
 * @returns {object[]} FHIR R4 resources without ids, each Patient followed by its dependents.
 */
function generate({ patients = 200, seed = 42, shift = false } = {}) {
  return generateWithStats({ patients, seed, shift }).resources;
}

/**
 * generate()'s resources, with counts of what is in them (`stats`) and one entry per discharge
 * (`discharges`): the factors READMISSION_MODEL read, the probability drawn, and whether another
 * stay followed within 30 days. With `shift`, the discharges are those of the unshifted data (the
 * outcome was drawn from it; SHIFT).
 */
function generateWithStats({ patients = 200, seed = 42, shift = false } = {}) {
  if (!Number.isInteger(patients) || patients < 0) {
    throw new Error(`invalid patient count: ${patients}`);
  }
  if (typeof shift !== 'boolean') {
    throw new Error(`invalid shift: ${shift}`);
  }
  const rnd = makeRandom(seed);
  const shiftRnd = shift ? makeRandom((seed ^ SHIFT.seedMask) >>> 0) : undefined;
  const usedNames = new Set();
  const stats = newStats();
  const resources = [];
  const discharges = [];
  let mrnNumber = 10000000 + rnd.int(0, 999999);
  for (let i = 0; i < patients; i++) {
    mrnNumber += rnd.int(1, 97);
    const mrn = String(mrnNumber);
    resources.push(...onePatient({ rnd, shiftRnd, usedNames, stats, discharges }, mrn, shift));
  }
  return { resources, stats, discharges };
}

// The counts generateWithStats returns, all zero.
function newStats() {
  return {
    patients: 0,
    sickPatients: 0,
    syntheaStylePatients: 0,
    deceasedPatients: 0,
    smokers: 0,
    exSmokers: 0,
    patientsWithoutSmokingStatus: 0,
    patientsWithComorbidity: Object.fromEntries(COMORBIDITIES.map((c) => [c, 0])),
    encounters: 0,
    encountersInpatient: 0,
    encountersEmergency: 0,
    encountersCancelled: 0,
    encountersDecadesLong: 0,
    encountersAfterDeath: 0,
    followUpVisits: 0,
    inpatientStays: 0,
    emergentStays: 0,
    staysAfterEmergencyVisit: 0,
    staysPriorityEmergency: 0,
    staysAdmittedFromEmergency: 0,
    staysElective: 0,
    readmissions: 0,
    observations: 0,
    observationsNoValue: 0,
    observationsNoValueWithReason: 0,
    observationsEnteredInError: 0,
    observationsUnknownCode: 0,
    observationsCategoryVitalSign: 0,
    observationsValueString: 0,
    observationsSurveyCoded: 0,
    observationsAfterDeath: 0,
    observationSetsPlusOffset: 0,
    bloodPressurePanels55284: 0,
    bloodPressurePanelsWithoutUnit: 0,
    temperaturesOral: 0,
    smokingObservations: 0,
    conditions: 0,
    conditionsSnomedOnly: 0,
    conditionsIcd10Only: 0,
    conditionsBothCodings: 0,
    conditionsRefuted: 0,
    conditionsEnteredInError: 0,
    conditionsRecordedDateOnly: 0,
    conditionsResolved: 0,
    conditionsAddedByShift: 0,
  };
}

// One patient's resources: the Patient followed by its Encounters, Observations and Conditions.
function onePatient(gen, mrn, shift) {
  const { rnd, shiftRnd, usedNames, stats, discharges } = gen;
  const synthea = rnd.chance(0.3);
  const demo = makePatient(rnd, mrn, usedNames, synthea);
  const { age, gender } = demo;
  const smoking = drawSmoking(rnd, age);
  const heightM = rnd.clampedNormal(gender === 'male' ? 1.76 : 1.63, 0.07, 1.45, 2.05);
  const profile = {
    usesFahrenheit: !synthea && rnd.chance(0.12),
    usesPounds: !synthea && rnd.chance(0.15),
    heightM,
    baseWeightKg: rnd.clampedNormal(26 * heightM * heightM, 5 * heightM * heightM, 40, 180),
  };
  const ref = patientReference(mrn);
  const ctx = { rnd, synthea, profile, subjectRef: ref, display: demo.display, practitioner: practitionerName(rnd) };
  // Death is decided first (from age and how ill the patient will be); nothing but the cause of
  // death and a few stray records come after it.
  const frailty = rnd.normal(0, READMISSION_MODEL.frailtySd);
  const disease = drawDisease(rnd, demo, smoking);
  const { severity } = disease;
  const deceased = rnd.chance(logistic(-3.8 + 0.05 * (age - 65) + 0.5 * Math.min(severity, 5)));
  const deathMs = deceased ? HISTORY_START + rnd.int(90, 710) * DAY_MS + rnd.int(0, 95) * 900e3 : undefined;
  disease.records = diseaseRecords(rnd, demo, disease, deathMs === undefined ? HISTORY_END : deathMs - DAY_MS);
  const sick = severity >= 1.5 || (severity >= 0.7 && rnd.chance(0.35)) || rnd.chance(0.03);
  const conditions = disease.records.map((r) => conditionResource(ctx, r, stats));
  const info = { sick, severity, demo, deathMs, frailty, smoking, conditions, disease };
  const { encounters, observations } = makeCare(ctx, info, stats, discharges);
  let shown = demo;
  if (shift) {
    // Only now that the care (and the outcome) is drawn from the unshifted data.
    shown = olderDemo(demo);
    conditions.push(...shiftedConditions({ ...ctx, rnd: shiftRnd }, demo, smoking, disease,
      deathMs === undefined ? HISTORY_END : deathMs - DAY_MS, stats));
    lowerSpo2(observations);
  }
  const resources = [patientResource(shown, deathMs), ...encounters, ...observations, ...conditions];
  countPatient(stats, { sick, synthea, deceased, encounters, observations, conditions });
  return resources;
}

// Counts one patient's data in `stats`.
function countPatient(stats, { sick, synthea, deceased, encounters, observations, conditions }) {
  stats.patients++;
  stats.sickPatients += sick ? 1 : 0;
  stats.syntheaStylePatients += synthea ? 1 : 0;
  stats.deceasedPatients += deceased ? 1 : 0;
  stats.encounters += encounters.length;
  stats.observations += observations.length;
  const lastSmoking = observations.filter((o) => hasLoinc(o.code, [SMOKING_STATUS.code])).pop();
  const lastCode = lastSmoking?.valueCodeableConcept.coding[0].code;
  stats.smokers += CURRENT_SMOKER_CODES.has(lastCode) ? 1 : 0;
  stats.exSmokers += lastCode === SMOKING_ANSWERS.ex[0] ? 1 : 0;
  stats.patientsWithoutSmokingStatus += lastSmoking ? 0 : 1;
  for (const c of comorbiditiesAt(conditions, REFERENCE_DATE)) stats.patientsWithComorbidity[c]++;
}

/**
 * Wraps generated resources in a FHIR transaction Bundle. Patients are created conditionally on
 * their MRN; dependents reference them by urn:uuid.
 */
function toTransactionBundle(resources, seed = 42) {
  const next = mulberry32((seed ^ 0x5bd1e995) >>> 0);
  const patientUrns = new Map();
  const entry = [];
  for (const resource of resources) {
    const fullUrl = `urn:uuid:${makeUuid(next)}`;
    const copy = JSON.parse(JSON.stringify(resource));
    const request = { method: 'POST', url: copy.resourceType };
    if (copy.resourceType === 'Patient') {
      const mrn = copy.identifier[0].value;
      patientUrns.set(patientReference(mrn), fullUrl);
      request.ifNoneExist = `identifier=${MRN_SYSTEM}|${mrn}`;
    } else if (copy.subject?.reference && patientUrns.has(copy.subject.reference)) {
      copy.subject.reference = patientUrns.get(copy.subject.reference);
    }
    entry.push({ fullUrl, resource: copy, request });
  }
  return { resourceType: 'Bundle', type: 'transaction', entry };
}

function parseArgs(argv) {
  const opts = { patients: 200, seed: 42, shift: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === '--patients') {
      opts.patients = Number(value);
      i++;
    } else if (arg === '--seed') {
      opts.seed = Number(value);
      i++;
    } else if (arg === '--shift') {
      opts.shift = true;
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write('usage: node generate.js [--patients N] [--seed S] [--shift]\n');
      process.exit(0);
    } else {
      throw new Error(`unknown argument: ${arg}`);
    }
  }
  if (!Number.isInteger(opts.patients) || opts.patients < 0) {
    throw new Error('--patients must be a non-negative integer');
  }
  if (!Number.isInteger(opts.seed)) {
    throw new Error('--seed must be an integer');
  }
  return opts;
}

module.exports = {
  generate,
  generateWithStats,
  toTransactionBundle,
  patientReference,
  mulberry32,
  MRN_SYSTEM,
  REFERENCE_DATE: new Date(REFERENCE_DATE).toISOString(),
  READMISSION_MODEL,
  SHIFT,
  readmissionProbability,
  riskFactorsAt,
  COMORBIDITY_CODES: CATEGORY_OF,
};

if (require.main === module) {
  // A reader that stops early (`| head`) is no error.
  process.stdout.on('error', (err) => process.exit(err.code === 'EPIPE' ? 0 : 1));
  try {
    const opts = parseArgs(process.argv.slice(2));
    const bundle = toTransactionBundle(generate(opts), opts.seed);
    process.stdout.write(JSON.stringify(bundle) + '\n');
  } catch (err) {
    process.stderr.write(`generate.js: ${err.message}\n`);
    process.exit(2);
  }
}
