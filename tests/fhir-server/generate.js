'use strict';
// Deterministic synthetic-patient generator for the FHIR test server.
//
// generate({ patients, seed }) returns FHIR R4 resources (Patient, Encounter, Observation) in
// creation order: each Patient is followed by its Encounters and Observations. The resources carry
// no ids; dependents point at their patient with a conditional reference
// `Patient?identifier=<MRN system>|<MRN>`, which the server replaces by `Patient/<assigned id>`
// when it creates them (and which `toTransactionBundle` turns into urn:uuid references).
//
// Run as a program, it prints the data as a FHIR transaction Bundle:
//   node generate.js --patients N --seed S

const REFERENCE_DATE = Date.parse('2026-11-01T00:00:00Z');
const DAY_MS = 24 * 3600 * 1000;

const MRN_SYSTEM = 'urn:oid:1.2.36.146.595.217.0.1';
const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const OBS_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const DATA_ABSENT = 'http://terminology.hl7.org/CodeSystem/data-absent-reason';
const SNOMED = 'http://snomed.info/sct';
const VITAL_PROFILE = 'http://hl7.org/fhir/StructureDefinition/';

const FEMALE_GIVEN = [
  'Olivia', 'Emma', 'Ava', 'Sophia', 'Isabella', 'Mia', 'Amelia', 'Harper', 'Evelyn', 'Abigail',
  'Emily', 'Elizabeth', 'Sofia', 'Avery', 'Ella', 'Scarlett', 'Grace', 'Chloe', 'Victoria', 'Riley',
  'Aria', 'Lily', 'Aubrey', 'Zoey', 'Penelope', 'Layla', 'Nora', 'Hannah', 'Addison', 'Eleanor',
  'Stella', 'Natalie', 'Leah', 'Hazel', 'Violet', 'Aurora', 'Savannah', 'Audrey', 'Brooklyn', 'Bella',
  'Claire', 'Skylar', 'Lucy', 'Paisley', 'Anna', 'Caroline', 'Ruth', 'Margaret', 'Dorothy', 'Helen',
];
const MALE_GIVEN = [
  'Liam', 'Noah', 'William', 'James', 'Oliver', 'Benjamin', 'Elijah', 'Lucas', 'Mason', 'Logan',
  'Alexander', 'Ethan', 'Jacob', 'Michael', 'Daniel', 'Henry', 'Jackson', 'Sebastian', 'Aiden', 'Matthew',
  'Samuel', 'David', 'Joseph', 'Carter', 'Owen', 'Wyatt', 'John', 'Jack', 'Luke', 'Jayden',
  'Dylan', 'Grayson', 'Levi', 'Isaac', 'Gabriel', 'Julian', 'Mateo', 'Anthony', 'Jaxon', 'Lincoln',
  'Joshua', 'Christopher', 'Andrew', 'Theodore', 'Caleb', 'Ryan', 'Nathan', 'Thomas', 'George', 'Arthur',
];
const FAMILY = [
  'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez',
  'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin',
  'Lee', 'Perez', 'Thompson', 'White', 'Harris', 'Sanchez', 'Clark', 'Ramirez', 'Lewis', 'Robinson',
  'Walker', 'Young', 'Allen', 'King', 'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores',
  'Green', 'Adams', 'Nelson', 'Baker', 'Hall', 'Rivera', 'Campbell', 'Mitchell', 'Carter', 'Roberts',
  'Gomez', 'Phillips', 'Evans', 'Turner', 'Diaz', 'Parker', 'Cruz', 'Edwards', 'Collins', 'Reyes',
  'Stewart', 'Morris', 'Morales', 'Murphy', 'Cook', 'Rogers', 'Gutierrez', 'Ortiz', 'Morgan', 'Cooper',
  'Peterson', 'Bailey', 'Reed', 'Kelly', 'Howard', 'Ramos', 'Kim', 'Cox', 'Ward', 'Richardson',
  'Watson', 'Brooks', 'Chavez', 'Wood', 'James', 'Bennett', 'Gray', 'Mendoza', 'Ruiz', 'Hughes',
  'Price', 'Alvarez', 'Castillo', 'Sanders', 'Patel', 'Myers', 'Long', 'Ross', 'Foster', 'Jimenez',
];
const STREETS = [
  'Main', 'Oak', 'Pine', 'Maple', 'Cedar', 'Elm', 'Washington', 'Lake', 'Hill', 'Park',
  'Walnut', 'Sunset', 'Lincoln', 'Jefferson', 'River', 'Church', 'Spring', 'Chestnut', 'Highland', 'Meadow',
];
const STREET_SUFFIXES = ['St', 'Ave', 'Rd', 'Ln', 'Dr', 'Ct', 'Way', 'Blvd'];
const CITIES = [
  ['Springfield', 'IL', '627'], ['Madison', 'WI', '537'], ['Columbus', 'OH', '432'], ['Portland', 'OR', '972'],
  ['Austin', 'TX', '787'], ['Denver', 'CO', '802'], ['Raleigh', 'NC', '276'], ['Albany', 'NY', '122'],
  ['Boise', 'ID', '837'], ['Richmond', 'VA', '232'], ['Salem', 'MA', '019'], ['Tucson', 'AZ', '857'],
];

// mulberry32: small, fast, deterministic 32-bit PRNG.
function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeRandom(seed) {
  const next = mulberry32(seed);
  const rnd = {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    normal: (mean, sd) => {
      // Box-Muller; 1 - next() keeps the log argument in (0, 1].
      const u = 1 - next();
      const v = next();
      return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    clampedNormal: (mean, sd, lo, hi) => Math.min(hi, Math.max(lo, rnd.normal(mean, sd))),
  };
  return rnd;
}

const round = (x, digits) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

// Instant without milliseconds, e.g. 2026-03-04T08:15:00Z.
const isoSeconds = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const isoDate = (ms) => new Date(ms).toISOString().substring(0, 10);

function patientReference(mrn) {
  return `Patient?identifier=${MRN_SYSTEM}|${mrn}`;
}

function quantity(value, unit, code) {
  return { value, unit, system: UCUM, code };
}

// Definitions of the vital signs, with the R4 vital-signs profile each one follows.
const VITALS = {
  heartRate: { code: '8867-4', display: 'Heart rate', profile: 'heartrate' },
  respRate: { code: '9279-1', display: 'Respiratory rate', profile: 'resprate' },
  spo2: {
    code: '59408-5',
    display: 'Oxygen saturation in Arterial blood by Pulse oximetry',
    profile: 'oxygensat',
    // The R4 oxygensat profile also requires LOINC 2708-6 in Observation.code.
    extraCodings: [{ system: LOINC, code: '2708-6', display: 'Oxygen saturation in Arterial blood' }],
  },
  temperature: { code: '8310-5', display: 'Body temperature', profile: 'bodytemp' },
  weight: { code: '29463-7', display: 'Body weight', profile: 'bodyweight' },
  bmi: { code: '39156-5', display: 'Body mass index (BMI) [Ratio]', profile: 'bmi' },
  bloodPressure: { code: '85354-9', display: 'Blood pressure panel with all children optional', profile: 'bp' },
  systolic: { code: '8480-6', display: 'Systolic blood pressure' },
  diastolic: { code: '8462-4', display: 'Diastolic blood pressure' },
};

function codeOf(def) {
  return {
    coding: [{ system: LOINC, code: def.code, display: def.display }, ...(def.extraCodings || [])],
    text: def.display,
  };
}

function vitalObservation(def, subjectRef, effective) {
  return {
    resourceType: 'Observation',
    meta: { profile: [VITAL_PROFILE + def.profile] },
    status: 'final',
    category: [
      {
        coding: [{ system: OBS_CATEGORY, code: 'vital-signs', display: 'Vital Signs' }],
        text: 'Vital Signs',
      },
    ],
    code: codeOf(def),
    subject: { reference: subjectRef },
    effectiveDateTime: effective,
  };
}

function makePatient(rnd, mrn, usedNames) {
  const gender = rnd.chance(0.5) ? 'female' : 'male';
  const givenList = gender === 'female' ? FEMALE_GIVEN : MALE_GIVEN;
  let given;
  let family;
  for (let attempt = 0; ; attempt++) {
    given = [rnd.pick(givenList)];
    family = rnd.pick(FAMILY);
    if (attempt >= 8) {
      // The plain combinations are running out: add a middle name.
      given.push(rnd.pick(givenList));
    }
    const key = `${family}|${given.join(' ')}`;
    if (!usedNames.has(key)) {
      usedNames.add(key);
      break;
    }
  }
  const age = rnd.int(18, 95);
  const birthMs = REFERENCE_DATE - age * 365.25 * DAY_MS - rnd.int(1, 360) * DAY_MS;
  const [city, state, zip] = rnd.pick(CITIES);
  const phone = `555-${String(rnd.int(100, 999))}-${String(rnd.int(0, 9999)).padStart(4, '0')}`;
  const patient = {
    resourceType: 'Patient',
    identifier: [
      {
        use: 'usual',
        type: {
          coding: [
            { system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR', display: 'Medical record number' },
          ],
        },
        system: MRN_SYSTEM,
        value: mrn,
      },
    ],
    active: true,
    name: [{ use: 'official', family, given }],
    telecom: [{ system: 'phone', value: phone, use: rnd.chance(0.6) ? 'mobile' : 'home' }],
    gender,
    birthDate: isoDate(birthMs),
    address: [
      {
        use: 'home',
        line: [`${rnd.int(1, 9999)} ${rnd.pick(STREETS)} ${rnd.pick(STREET_SUFFIXES)}`],
        city,
        state,
        postalCode: zip + String(rnd.int(0, 99)).padStart(2, '0'),
        country: 'US',
      },
    ],
  };
  return { patient, age, gender };
}

// Two years of care before the reference date: inpatient stays (some of them readmissions) and
// clinic visits, each with the vital signs taken at it, so that a feature vector as of any
// discharge sees the vital signs of that stay.
const HISTORY_START = REFERENCE_DATE - 729 * DAY_MS;
const HISTORY_END = REFERENCE_DATE - 2 * DAY_MS; // every stay and visit ends before this
const READMISSION_DAYS = 30;

// Vital signs by the patient's state when they are taken: [mean, sd, min, max] of heart rate,
// respiratory rate, SpO2 (%), temperature (Cel), systolic and diastolic pressure.
const VITAL_STATES = {
  // at a clinic visit
  well: {
    hr: [74, 9, 45, 120], rr: [15, 2, 10, 22], spo2: [97.5, 1.2, 93, 100],
    temp: [36.8, 0.3, 35.8, 37.7], sys: [122, 12, 90, 160], dia: [78, 8, 50, 100],
  },
  sick: {
    hr: [104, 14, 60, 160], rr: [23, 4, 12, 36], spo2: [91, 3.5, 78, 99],
    temp: [38.2, 0.8, 35.5, 40.5], sys: [150, 18, 95, 210], dia: [90, 11, 55, 125],
  },
  // on admission: an acute episode, worse on top of chronic illness
  admitWell: {
    hr: [96, 14, 55, 150], rr: [20, 3, 12, 32], spo2: [94.5, 2.2, 85, 100],
    temp: [37.7, 0.8, 35.8, 40.2], sys: [134, 16, 90, 190], dia: [82, 10, 50, 115],
  },
  admitSick: {
    hr: [112, 15, 65, 170], rr: [25, 4, 14, 40], spo2: [89, 3.5, 75, 98],
    temp: [38.4, 0.9, 35.5, 40.8], sys: [152, 20, 90, 220], dia: [90, 12, 50, 130],
  },
  // a few hours before discharge: recovered, or not quite
  dischargeWell: {
    hr: [76, 9, 48, 115], rr: [16, 2, 10, 22], spo2: [96.8, 1.3, 92, 100],
    temp: [36.9, 0.3, 35.9, 37.8], sys: [124, 12, 90, 165], dia: [77, 8, 50, 100],
  },
  dischargeSick: {
    hr: [95, 13, 58, 145], rr: [21, 3.5, 12, 34], spo2: [92.5, 3, 80, 99],
    temp: [37.5, 0.6, 35.8, 39.5], sys: [142, 17, 95, 200], dia: [86, 10, 55, 120],
  },
};

/**
 * Probability that another inpatient stay starts within 30 days of a discharge: higher for the
 * chronically sick, the old and those admitted often in the past year (the stay just ended not
 * counted). The readmission signal a model trained on the export can learn.
 */
function readmissionProbability(sick, age, priorStays) {
  const z = -3.2 + 1.7 * (sick ? 1 : 0) + 0.03 * (age - 65) + 0.5 * Math.min(priorStays, 4);
  return Math.min(0.8, 1 / (1 + Math.exp(-z)));
}

// Milliseconds to the next event of a Poisson process with `perDay` events a day.
const exponentialMs = (rnd, perDay) => (-Math.log(1 - rnd.next()) / perDay) * DAY_MS;
// Down to the quarter hour, as charted times are.
const quarterHour = (ms) => Math.floor(ms / 900e3) * 900e3;

/**
 * Inpatient stays over the history, in order: admissions come as a Poisson process (more often
 * for the sick); after each discharge a readmission follows within 30 days with
 * readmissionProbability, otherwise the next admission is at least 30 days away. Stays of the
 * sick last longer. Returns [{startMs, endMs}].
 */
function planStays(rnd, sick, age) {
  const perDay = (sick ? 1.3 : 0.4) / 730;
  const stays = [];
  let t = HISTORY_START + exponentialMs(rnd, perDay);
  while (stays.length < 12) {
    const startMs = quarterHour(t);
    const days = sick ? rnd.clampedNormal(6, 3, 2, 16) : rnd.clampedNormal(2.5, 1.5, 1, 7);
    const endMs = quarterHour(startMs + days * DAY_MS);
    if (endMs > HISTORY_END) {
      break;
    }
    const prior = stays.filter((s) => s.startMs > endMs - 365 * DAY_MS).length;
    stays.push({ startMs, endMs });
    if (rnd.chance(readmissionProbability(sick, age, prior))) {
      // Readmissions come early more often than late.
      const u = rnd.next();
      t = endMs + (1 + Math.floor(28 * u * u)) * DAY_MS + rnd.int(0, 23) * 3600e3;
    } else {
      t = endMs + READMISSION_DAYS * DAY_MS + exponentialMs(rnd, perDay);
    }
  }
  return stays;
}

/**
 * Clinic visits in office hours, none within a day of a stay: check-ups, and a follow-up 5 to 14
 * days after about half of the discharges. Returns [{startMs, endMs}].
 */
function planVisits(rnd, sick, stays) {
  const nearStay = (ms) => stays.some((s) => ms > s.startMs - DAY_MS && ms < s.endMs + DAY_MS);
  const visits = [];
  const count = sick ? rnd.int(1, 3) : rnd.int(1, 4);
  for (let i = 0; i < count; i++) {
    let startMs;
    for (let attempt = 0; attempt < 5; attempt++) {
      startMs = HISTORY_START + rnd.int(0, 725) * DAY_MS + rnd.int(32, 68) * 900e3;
      if (!nearStay(startMs)) {
        break;
      }
    }
    visits.push({ startMs, endMs: startMs + rnd.int(2, 12) * 900e3 });
  }
  for (const s of stays) {
    if (rnd.chance(0.5)) {
      const day = Math.floor((s.endMs + rnd.int(5, 14) * DAY_MS) / DAY_MS) * DAY_MS;
      const startMs = day + rnd.int(32, 68) * 900e3;
      if (startMs < HISTORY_END && !nearStay(startMs)) {
        visits.push({ startMs, endMs: startMs + rnd.int(2, 6) * 900e3 });
      }
    }
  }
  return visits;
}

function encounterResource(subjectRef, inpatient, startMs, endMs, status) {
  return {
    resourceType: 'Encounter',
    status,
    class: inpatient
      ? { system: ACT_CODE, code: 'IMP', display: 'inpatient encounter' }
      : { system: ACT_CODE, code: 'AMB', display: 'ambulatory' },
    type: [
      inpatient
        ? { coding: [{ system: SNOMED, code: '32485007', display: 'Hospital admission' }], text: 'Hospital admission' }
        : {
            coding: [{ system: SNOMED, code: '185349003', display: 'Encounter for check up' }],
            text: 'Encounter for check up',
          },
    ],
    subject: { reference: subjectRef },
    period: { start: isoSeconds(startMs), end: isoSeconds(endMs) },
  };
}

/**
 * The vital signs taken at one moment, in the patient's units: heart rate, respiratory rate,
 * SpO2, temperature, weight and BMI when `kg` is given, a blood-pressure panel; a few percent
 * untidy (no value, entered in error, an unknown code).
 */
function vitalSet(rnd, subjectRef, profile, t, state, kg, stats) {
  const { usesFahrenheit, usesPounds, heightM } = profile;
  const v = VITAL_STATES[state];
  const draw = ([mean, sd, lo, hi]) => rnd.clampedNormal(mean, sd, lo, hi);
  const effective = isoSeconds(t);
  const point = [];

  const hr = vitalObservation(VITALS.heartRate, subjectRef, effective);
  hr.valueQuantity = quantity(Math.round(draw(v.hr)), 'beats/minute', '/min');
  point.push(hr);

  const rr = vitalObservation(VITALS.respRate, subjectRef, effective);
  rr.valueQuantity = quantity(Math.round(draw(v.rr)), 'breaths/minute', '/min');
  point.push(rr);

  const spo2 = vitalObservation(VITALS.spo2, subjectRef, effective);
  spo2.valueQuantity = quantity(Math.round(draw(v.spo2)), '%', '%');
  point.push(spo2);

  const temp = vitalObservation(VITALS.temperature, subjectRef, effective);
  const celsius = draw(v.temp);
  temp.valueQuantity = usesFahrenheit
    ? quantity(round((celsius * 9) / 5 + 32, 1), '°F', '[degF]')
    : quantity(round(celsius, 1), '°C', 'Cel');
  point.push(temp);

  if (kg !== undefined) {
    const weight = vitalObservation(VITALS.weight, subjectRef, effective);
    weight.valueQuantity = usesPounds
      ? quantity(round(kg * 2.20462, 1), 'lb', '[lb_av]')
      : quantity(round(kg, 1), 'kg', 'kg');
    point.push(weight);

    const bmi = vitalObservation(VITALS.bmi, subjectRef, effective);
    bmi.valueQuantity = quantity(round(kg / (heightM * heightM), 1), 'kg/m2', 'kg/m2');
    point.push(bmi);
  }

  const bp = vitalObservation(VITALS.bloodPressure, subjectRef, effective);
  const systolic = Math.round(draw(v.sys));
  const diastolic = Math.min(systolic - 20, Math.round(draw(v.dia)));
  bp.component = [
    { code: codeOf(VITALS.systolic), valueQuantity: quantity(systolic, 'mmHg', 'mm[Hg]') },
    { code: codeOf(VITALS.diastolic), valueQuantity: quantity(diastolic, 'mmHg', 'mm[Hg]') },
  ];
  point.push(bp);

  // Untidy records, a few percent each.
  for (const obs of point) {
    if (obs.valueQuantity && rnd.chance(0.02)) {
      delete obs.valueQuantity;
      if (rnd.chance(0.5)) {
        obs.dataAbsentReason = {
          coding: [{ system: DATA_ABSENT, code: rnd.pick(['unknown', 'not-performed', 'error']) }],
        };
        stats.observationsNoValueWithReason++;
      } else {
        stats.observationsNoValue++;
      }
    } else if (rnd.chance(0.02)) {
      obs.status = 'entered-in-error';
      if (obs.valueQuantity && rnd.chance(0.5)) {
        // The wrong value that got the record retracted.
        obs.valueQuantity.value = round(obs.valueQuantity.value * 10, 1);
      }
      stats.observationsEnteredInError++;
    }
  }
  if (rnd.chance(0.03)) {
    const unknown = vitalObservation({ code: '99999-9', display: 'Unknown local test' }, subjectRef, effective);
    delete unknown.meta; // no vital-signs profile for this code
    unknown.valueQuantity = quantity(round(rnd.normal(50, 15), 1), '1', '1');
    point.push(unknown);
    stats.observationsUnknownCode++;
  }
  return point;
}

/**
 * A patient's Encounters (in order of start) and Observations (in order of time). Each stay has
 * vital signs with weight on admission (in the emergency department shortly before, or on the
 * ward) and a few hours before discharge, each charted 92% of the time; the sick come in with
 * fluid on board and leave lighter, so weight changes over a stay. Each clinic visit has vital
 * signs, with weight at about half. About 3% of encounters are followed by a cancelled one (a
 * planned admission or appointment that did not happen) within 30 days.
 */
function makeCare(rnd, subjectRef, profile, age, stats) {
  const { sick, baseWeightKg } = profile;
  const stays = planStays(rnd, sick, age);
  const visits = planVisits(rnd, sick, stays);
  // Slow weight loss of chronic illness, and noise of the scales.
  const weightAt = (ms) =>
    Math.max(35, baseWeightKg - (sick ? (0.008 * (ms - HISTORY_START)) / DAY_MS : 0) + rnd.normal(0, 0.5));

  const encounters = [];
  const sets = [];
  for (const s of stays) {
    encounters.push({ ...s, resource: encounterResource(subjectRef, true, s.startMs, s.endMs, 'finished') });
    // Now and then a set was not charted (or charted elsewhere): earlier values, or none, count.
    if (rnd.chance(0.92)) {
      const admitted = s.startMs + rnd.int(-8, 8) * 900e3;
      const fluidKg = sick ? 1 + 3 * rnd.next() : rnd.next();
      sets.push({ ms: admitted, state: sick ? 'admitSick' : 'admitWell', kg: weightAt(admitted) + fluidKg });
    }
    if (rnd.chance(0.92)) {
      const discharged = s.endMs - rnd.int(2, 16) * 900e3;
      const leftKg = sick ? 1.2 * rnd.next() : 0;
      const kg = weightAt(discharged) + leftKg;
      sets.push({ ms: discharged, state: sick ? 'dischargeSick' : 'dischargeWell', kg });
    }
  }
  for (const v of visits) {
    encounters.push({ ...v, resource: encounterResource(subjectRef, false, v.startMs, v.endMs, 'finished') });
    const at = v.startMs + rnd.int(0, 2) * 900e3;
    sets.push({ ms: at, state: sick ? 'sick' : 'well', kg: rnd.chance(0.5) ? weightAt(at) : undefined });
  }
  for (const e of [...encounters]) {
    if (rnd.chance(0.03)) {
      const inpatient = rnd.chance(0.5);
      const startMs = quarterHour(e.endMs + rnd.int(1, 29) * DAY_MS + rnd.int(0, 23) * 3600e3);
      const endMs = startMs + (inpatient ? rnd.int(1, 5) * DAY_MS : rnd.int(2, 8) * 900e3);
      if (endMs < REFERENCE_DATE) {
        const resource = encounterResource(subjectRef, inpatient, startMs, endMs, 'cancelled');
        encounters.push({ startMs, endMs, resource });
        stats.encountersCancelled++;
      }
    }
  }
  encounters.sort((a, b) => a.startMs - b.startMs);
  sets.sort((a, b) => a.ms - b.ms);

  stats.inpatientStays += stays.length;
  stats.encountersInpatient += encounters.filter((e) => e.resource.class.code === 'IMP').length;
  for (let i = 1; i < stays.length; i++) {
    stats.readmissions += stays[i].startMs - stays[i - 1].endMs <= READMISSION_DAYS * DAY_MS ? 1 : 0;
  }
  const observations = [];
  for (const set of sets) {
    observations.push(...vitalSet(rnd, subjectRef, profile, set.ms, set.state, set.kg, stats));
  }
  return { encounters: encounters.map((e) => e.resource), observations };
}

/**
 * Generates the synthetic data set.
 * @param {{patients?: number, seed?: number}} options
 * @returns {object[]} FHIR R4 resources without ids, each Patient followed by its dependents.
 */
function generate({ patients = 200, seed = 42 } = {}) {
  return generateWithStats({ patients, seed }).resources;
}

function generateWithStats({ patients = 200, seed = 42 } = {}) {
  if (!Number.isInteger(patients) || patients < 0) {
    throw new Error(`invalid patient count: ${patients}`);
  }
  const rnd = makeRandom(seed);
  const usedNames = new Set();
  const stats = {
    patients: 0,
    sickPatients: 0,
    encounters: 0,
    encountersInpatient: 0,
    encountersCancelled: 0,
    inpatientStays: 0,
    readmissions: 0,
    observations: 0,
    observationsNoValue: 0,
    observationsNoValueWithReason: 0,
    observationsEnteredInError: 0,
    observationsUnknownCode: 0,
  };
  const resources = [];
  let mrnNumber = 10000000 + rnd.int(0, 999999);
  for (let i = 0; i < patients; i++) {
    mrnNumber += rnd.int(1, 97);
    const mrn = String(mrnNumber);
    const { patient, age, gender } = makePatient(rnd, mrn, usedNames);
    const sick = rnd.chance(0.08 + (0.25 * (age - 18)) / 77);
    const heightM = rnd.clampedNormal(gender === 'male' ? 1.76 : 1.63, 0.07, 1.45, 2.05);
    const profile = {
      sick,
      usesFahrenheit: rnd.chance(0.12),
      usesPounds: rnd.chance(0.15),
      heightM,
      baseWeightKg: rnd.clampedNormal(26 * heightM * heightM, 5 * heightM * heightM, 40, 180),
    };
    const ref = patientReference(mrn);
    const { encounters, observations } = makeCare(rnd, ref, profile, age, stats);
    resources.push(patient, ...encounters, ...observations);
    stats.patients++;
    stats.sickPatients += sick ? 1 : 0;
    stats.encounters += encounters.length;
    stats.observations += observations.length;
  }
  return { resources, stats };
}

// Deterministic UUID (v4 layout) from a PRNG.
function makeUuid(next) {
  const hex = [];
  for (let i = 0; i < 4; i++) {
    hex.push(((next() * 4294967296) >>> 0).toString(16).padStart(8, '0'));
  }
  const h = hex.join('');
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.substring(0, 8)}-${h.substring(8, 12)}-4${h.substring(13, 16)}-${variant}${h.substring(17, 20)}-${h.substring(20, 32)}`;
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
  const opts = { patients: 200, seed: 42 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === '--patients') {
      opts.patients = Number(value);
      i++;
    } else if (arg === '--seed') {
      opts.seed = Number(value);
      i++;
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write('usage: node generate.js [--patients N] [--seed S]\n');
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
};

if (require.main === module) {
  try {
    const opts = parseArgs(process.argv.slice(2));
    const bundle = toTransactionBundle(generate(opts), opts.seed);
    process.stdout.write(JSON.stringify(bundle) + '\n');
  } catch (err) {
    process.stderr.write(`generate.js: ${err.message}\n`);
    process.exit(2);
  }
}
