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
// from a logistic model of what the data holds as of that discharge (READMISSION_MODEL below),
// read back from the very resources generated, so that a model trained on the adapter's
// features as of the discharge can learn it.
//
// `shift: true` (for testing drift monitoring) gives the same population shifted on purpose in
// three ways and no other (SHIFT below): 15 years older (birthDate, an age of at most 100), sicker
// (heart failure, COPD, CKD, diabetes with complications, cancer and dementia drawn a second time
// from ten times the odds for those who lack them: an extra active Condition each), and measured
// by another pulse oximeter (every SpO2, 59408-5/2708-6, 3 points lower). Everything else is drawn
// exactly as without it, from the same draws: the same patients, sexes, encounters, stays, vital
// signs, weights, smoking statuses, deaths and outcomes (those follow the unshifted age and
// diseases: the shift is applied once a patient's care is drawn, from a random generator of its
// own). Without `shift` the output is what it always was, byte for byte.
//
// Run as a program, it prints the data as a FHIR transaction Bundle:
//   node generate.js --patients N --seed S [--shift]

const REFERENCE_DATE = Date.parse('2026-11-01T00:00:00Z');
const DAY_MS = 24 * 3600 * 1000;
const YEAR_MS = 365.25 * DAY_MS;

const MRN_SYSTEM = 'urn:oid:1.2.36.146.595.217.0.1';
const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const OBS_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const ACT_PRIORITY = 'http://terminology.hl7.org/CodeSystem/v3-ActPriority';
const ADMIT_SOURCE = 'http://terminology.hl7.org/CodeSystem/admit-source';
const PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
const DATA_ABSENT = 'http://terminology.hl7.org/CodeSystem/data-absent-reason';
const SNOMED = 'http://snomed.info/sct';
const ICD10CM = 'http://hl7.org/fhir/sid/icd-10-cm';
const CONDITION_CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const CONDITION_VER_STATUS = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';
const CONDITION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/condition-category';
const VITAL_PROFILE = 'http://hl7.org/fhir/StructureDefinition/';
const US_CORE = 'http://hl7.org/fhir/us/core/StructureDefinition/';
const SYNTHEA_SYSTEM = 'https://github.com/synthetichealth/synthea';
const MAIDEN_NAME_URL = 'http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName';

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
    // One of `items` with probability proportional to `weight(item)`.
    weighted: (items, weight = (x) => x.w) => {
      const total = items.reduce((s, x) => s + weight(x), 0);
      let u = next() * total;
      for (const x of items) {
        u -= weight(x);
        if (u < 0) return x;
      }
      return items[items.length - 1];
    },
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
const logistic = (z) => 1 / (1 + Math.exp(-z));

// Instant without milliseconds, e.g. 2026-03-04T08:15:00Z; Synthea writes 2026-03-04T08:15:00+00:00.
const isoSeconds = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const isoOffset = (ms) => isoSeconds(ms).replace(/Z$/, '+00:00');
const isoDate = (ms) => new Date(ms).toISOString().substring(0, 10);

function patientReference(mrn) {
  return `Patient?identifier=${MRN_SYSTEM}|${mrn}`;
}

function quantity(value, unit, code) {
  return { value, unit, system: UCUM, code };
}

// ---------------------------------------------------------------------------------------------
// Observation codes

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
  // As Synthea writes them (no R4 vital-signs profile fits: bodytemp and bp require 8310-5 and 85354-9).
  oralTemperature: { code: '8331-1', display: 'Oral temperature' },
  bloodPressureSynthea: { code: '55284-4', display: 'Blood Pressure' },
  systolicSynthea: { code: '8480-6', display: 'Systolic Blood Pressure' },
  diastolicSynthea: { code: '8462-4', display: 'Diastolic Blood Pressure' },
  pain: { code: '72514-3', display: 'Pain severity - 0-10 verbal numeric rating [Score] - Reported' },
  ejectionFraction: { code: '10230-1', display: 'Left ventricular Ejection fraction' },
};

const SMOKING_STATUS = { code: '72166-2', display: 'Tobacco smoking status' };
const SMOKING_ANSWERS = {
  daily: ['449868002', 'Smokes tobacco daily'],
  occasional: ['428041000124106', 'Occasional tobacco smoker'],
  ex: ['8517006', 'Ex-smoker'],
  never: ['266919005', 'Never smoked tobacco'],
  unknown: ['266927001', 'Tobacco smoking consumption unknown'],
};
const CURRENT_SMOKER_CODES = new Set([SMOKING_ANSWERS.daily[0], SMOKING_ANSWERS.occasional[0]]);

const PHQ_ANSWERS = [
  ['LA6568-5', 'Not at all'], ['LA6569-3', 'Several days'], ['LA6570-1', 'More than half the days'], ['LA6571-9', 'Nearly every day'],
];
const HOUSING = { code: '71802-3', display: 'Housing status' };
const HOUSING_ANSWERS = [
  ['LA30190-5', 'I have housing'],
  ['LA30191-3', 'I do not have housing (staying with others, in a hotel, in a shelter, living outside on the street, on a beach, in a car, or in a park)'],
];

function codeOf(def) {
  return {
    coding: [{ system: LOINC, code: def.code, display: def.display }, ...(def.extraCodings || [])],
    text: def.display,
  };
}

function categoryOf(code, display) {
  return [{ coding: [{ system: OBS_CATEGORY, code, display }], text: display }];
}

function vitalObservation(def, subjectRef, effective) {
  return {
    resourceType: 'Observation',
    meta: { profile: [VITAL_PROFILE + def.profile] },
    status: 'final',
    category: categoryOf('vital-signs', 'Vital Signs'),
    code: codeOf(def),
    subject: { reference: subjectRef },
    effectiveDateTime: effective,
  };
}

// ---------------------------------------------------------------------------------------------
// Condition codes: SNOMED CT and ICD-10-CM for each variant of a disease (`w`: how often it is
// the one chosen). `CATEGORY_OF` maps the codes of the comorbidities the outcome reads.

const variant = (sct, sctDisplay, icd, icdDisplay, w = 1) => ({ sct: [sct, sctDisplay], icd: [icd, icdDisplay], w });

const CONDITION_CODES = {
  hypertension: [variant('38341003', 'Hypertension', 'I10', 'Essential (primary) hypertension')],
  diabetes: [variant('44054006', 'Diabetes mellitus type 2', 'E11.9', 'Type 2 diabetes mellitus without complications')],
  diabetesComplicated: [
    variant('127013003', 'Diabetic renal disease', 'E11.22', 'Type 2 diabetes mellitus with diabetic chronic kidney disease'),
    variant('368581000119106', 'Neuropathy due to type 2 diabetes mellitus', 'E11.40',
      'Type 2 diabetes mellitus with diabetic neuropathy, unspecified'),
    variant('422034002', 'Diabetic retinopathy associated with type II diabetes mellitus', 'E11.319',
      'Type 2 diabetes mellitus with unspecified diabetic retinopathy without macular edema'),
  ],
  heartFailure: [
    variant('88805009', 'Chronic congestive heart failure', 'I50.9', 'Heart failure, unspecified', 3),
    variant('84114007', 'Heart failure', 'I50.9', 'Heart failure, unspecified', 2),
    variant('417996009', 'Systolic heart failure', 'I50.22', 'Chronic systolic (congestive) heart failure', 1),
    variant('418304008', 'Diastolic heart failure', 'I50.32', 'Chronic diastolic (congestive) heart failure', 1),
  ],
  copd: [
    variant('185086009', 'Chronic obstructive bronchitis', 'J44.9', 'Chronic obstructive pulmonary disease, unspecified', 3),
    variant('87433001', 'Pulmonary emphysema', 'J43.9', 'Emphysema, unspecified', 2),
    variant('13645005', 'Chronic obstructive lung disease', 'J44.9', 'Chronic obstructive pulmonary disease, unspecified', 2),
    variant('195951007', 'Acute exacerbation of chronic obstructive airways disease', 'J44.1',
      'Chronic obstructive pulmonary disease with (acute) exacerbation', 1),
  ],
  // By stage: 1, 2, 3 (unspecified, 3a, 3b), 4, end-stage.
  ckd: [
    [variant('431855005', 'Chronic kidney disease stage 1', 'N18.1', 'Chronic kidney disease, stage 1')],
    [variant('431856006', 'Chronic kidney disease stage 2', 'N18.2', 'Chronic kidney disease, stage 2 (mild)')],
    [
      variant('433144002', 'Chronic kidney disease stage 3', 'N18.30', 'Chronic kidney disease, stage 3 unspecified', 4),
      variant('700378005', 'Chronic kidney disease stage 3a', 'N18.31', 'Chronic kidney disease, stage 3a', 1),
      variant('700379002', 'Chronic kidney disease stage 3b', 'N18.32', 'Chronic kidney disease, stage 3b', 1),
    ],
    [variant('431857002', 'Chronic kidney disease stage 4', 'N18.4', 'Chronic kidney disease, stage 4 (severe)')],
    [variant('46177005', 'End-stage renal disease', 'N18.6', 'End stage renal disease')],
  ],
  cancer: {
    lung: variant('254637007', 'Non-small cell lung cancer', 'C34.90',
      'Malignant neoplasm of unspecified part of unspecified bronchus or lung'),
    colon: variant('363406005', 'Malignant neoplasm of colon', 'C18.9', 'Malignant neoplasm of colon, unspecified'),
    breast: variant('254837009', 'Malignant neoplasm of breast', 'C50.919',
      'Malignant neoplasm of unspecified site of unspecified female breast'),
    prostate: variant('399068003', 'Malignant tumor of prostate', 'C61', 'Malignant neoplasm of prostate'),
    // What Synthea writes for prostate cancer: "neoplasm", behaviour not stated, so it counts as
    // cancer only through the ICD-10-CM coding (as in models/value-sets/cancer.toml).
    prostateSynthea: { ...variant('126906006', 'Neoplasm of prostate', 'C61', 'Malignant neoplasm of prostate'), notCancer: true },
  },
  metastasis: {
    colon: variant('94260004', 'Secondary malignant neoplasm of colon', 'C78.5',
      'Secondary malignant neoplasm of large intestine and rectum'),
    any: variant('128462008', 'Metastatic malignant neoplasm', 'C79.9', 'Secondary malignant neoplasm of unspecified site'),
    lung: variant('94391008', 'Secondary malignant neoplasm of lung', 'C78.00', 'Secondary malignant neoplasm of unspecified lung'),
    bone: variant('94222008', 'Secondary malignant neoplasm of bone', 'C79.51', 'Secondary malignant neoplasm of bone'),
  },
  dementia: [
    variant('26929004', "Alzheimer's disease", 'G30.9', "Alzheimer's disease, unspecified", 2),
    variant('52448006', 'Dementia', 'F03.90',
      'Unspecified dementia, unspecified severity, without behavioral disturbance, psychotic disturbance, mood disturbance, and anxiety', 1),
  ],
  mi: [variant('22298006', 'Myocardial infarction', 'I21.9', 'Acute myocardial infarction, unspecified')],
  miHistory: [variant('399211009', 'History of myocardial infarction', 'I25.2', 'Old myocardial infarction')],
  stroke: [variant('230690007', 'Cerebrovascular accident', 'I63.9', 'Cerebral infarction, unspecified')],
  prediabetes: [variant('15777000', 'Prediabetes', 'R73.03', 'Prediabetes')],
  bronchitis: [variant('10509002', 'Acute bronchitis', 'J20.9', 'Acute bronchitis, unspecified')],
  sinusitis: [variant('444814009', 'Viral sinusitis', 'J01.90', 'Acute sinusitis, unspecified')],
  pharyngitis: [variant('195662009', 'Acute viral pharyngitis', 'J02.9', 'Acute pharyngitis, unspecified')],
};

// The comorbidities of the outcome model.
const COMORBIDITIES = ['heartFailure', 'copd', 'ckd', 'diabetesComplicated', 'cancer', 'metastasis', 'dementia'];
const CATEGORY_OF = new Map();
for (const category of COMORBIDITIES) {
  const entry = CONDITION_CODES[category];
  const variants = Array.isArray(entry) ? entry.flat() : Object.values(entry);
  for (const v of variants) {
    if (!v.notCancer) CATEGORY_OF.set(`${SNOMED}|${v.sct[0]}`, category);
    CATEGORY_OF.set(`${ICD10CM}|${v.icd[0]}`, category);
  }
}

// ---------------------------------------------------------------------------------------------
// Patient

const practitionerName = (rnd) =>
  `Dr. ${rnd.pick(rnd.chance(0.5) ? FEMALE_GIVEN : MALE_GIVEN)} ${rnd.pick(FAMILY)}`;

// Demographics (every random draw of a Patient); the resource is built once death is known.
function makePatient(rnd, mrn, usedNames, synthea) {
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
  const prefix = gender === 'male' ? 'Mr.' : age >= 25 && rnd.chance(0.6) ? 'Mrs.' : 'Ms.';
  const maidenName = `${rnd.pick(FEMALE_GIVEN)} ${rnd.pick(FAMILY)}`;
  const demo = {
    mrn, gender, given, family, age, birthMs, phone, prefix, maidenName, synthea,
    phoneUse: rnd.chance(0.6) ? 'mobile' : 'home',
    line: `${rnd.int(1, 9999)} ${rnd.pick(STREETS)} ${rnd.pick(STREET_SUFFIXES)}`,
    city, state, postalCode: zip + String(rnd.int(0, 99)).padStart(2, '0'),
    // What Synthea writes in Encounter.subject.display.
    display: `${prefix} ${given.join(' ')} ${family}`,
  };
  return demo;
}

function patientResource(demo, deceasedMs) {
  const { synthea } = demo;
  const patient = { resourceType: 'Patient' };
  if (synthea) {
    patient.meta = { profile: [US_CORE + 'us-core-patient'] };
    patient.extension = [{ url: MAIDEN_NAME_URL, valueString: demo.maidenName }];
  }
  Object.assign(patient, {
    identifier: [
      {
        use: 'usual',
        type: {
          coding: [
            { system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR', display: 'Medical record number' },
          ],
        },
        system: MRN_SYSTEM,
        value: demo.mrn,
      },
    ],
    active: true,
    name: [{ use: 'official', family: demo.family, given: demo.given, ...(synthea ? { prefix: [demo.prefix] } : undefined) }],
    telecom: [{ system: 'phone', value: demo.phone, use: demo.phoneUse }],
    gender: demo.gender,
    birthDate: isoDate(demo.birthMs),
  });
  if (deceasedMs !== undefined) {
    patient.deceasedDateTime = synthea ? isoOffset(deceasedMs) : isoSeconds(deceasedMs);
  }
  patient.address = [
    { use: 'home', line: [demo.line], city: demo.city, state: demo.state, postalCode: demo.postalCode, country: 'US' },
  ];
  return patient;
}

// Two years of care before the reference date: inpatient stays (some of them readmissions),
// emergency visits and clinic visits, each with the vital signs taken at it, so that a feature
// vector as of any discharge sees the vital signs of that stay.
const HISTORY_START = REFERENCE_DATE - 729 * DAY_MS;
const HISTORY_END = REFERENCE_DATE - 2 * DAY_MS; // every stay and visit ends before this
const READMISSION_DAYS = 30;

// ---------------------------------------------------------------------------------------------
// Smoking and chronic disease

/**
 * Smoking history: never (most), former, current; about 12% of former smokers quit during the
 * history (current before, ex-smoker after). Most patients have their status recorded at clinic
 * visits; 2% only ever as "unknown".
 */
function drawSmoking(rnd, age) {
  const pCurrent = age < 45 ? 0.16 : age < 65 ? 0.15 : 0.09;
  const pEx = age < 45 ? 0.1 : age < 65 ? 0.25 : 0.4;
  const u = rnd.next();
  const status = u < pCurrent ? 'current' : u < pCurrent + pEx ? 'ex' : 'never';
  const quitMs = status === 'ex' && rnd.chance(0.12) ? HISTORY_START + rnd.int(60, 660) * DAY_MS : undefined;
  return { status, quitMs, daily: rnd.chance(0.75), recorded: rnd.chance(0.9), unknownOnly: rnd.chance(0.02) };
}

function smokingAt(smoking, ms) {
  if (smoking.status === 'never') return 'never';
  if (smoking.status === 'current' || (smoking.quitMs !== undefined && ms < smoking.quitMs)) {
    return smoking.daily ? 'daily' : 'occasional';
  }
  return 'ex';
}

/**
 * Which chronic diseases the patient has by the end of the history (prevalence rising with age,
 * smokers more often COPD, lung cancer and vascular disease), when each began, and the Condition
 * records that say so: statuses, duplicates coded another way, acute illnesses, and decoys
 * (refuted, entered in error). `severity` drives how sick the patient is (vital signs,
 * admissions, emergency visits, length of stay, death); the outcome reads the records instead.
 * `lift` is added to the log odds of the six comorbidities the shift adds (SHIFT); 0 but there.
 */
function drawDisease(rnd, demo, smoking, lift = 0) {
  const { age, gender } = demo;
  const a = age - 65;
  const ever = smoking.status !== 'never';
  const current = smoking.status === 'current' || smoking.quitMs !== undefined;
  const male = gender === 'male';
  const has = {};
  has.hypertension = rnd.chance(logistic(0.3 + 0.06 * a));
  has.diabetes = rnd.chance(logistic(-1.7 + 0.03 * a + (has.hypertension ? 0.4 : 0)));
  has.diabetesComplicated = has.diabetes && rnd.chance(logistic(-0.6 + 0.03 * a + lift));
  has.ckd = rnd.chance(logistic(-2.9 + 0.06 * a + (has.diabetes ? 0.9 : 0) + (has.hypertension ? 0.6 : 0) + lift));
  has.mi = rnd.chance(logistic(-3.6 + 0.05 * a + (male ? 0.6 : 0) + (current ? 0.6 : ever ? 0.3 : 0) +
    (has.hypertension ? 0.4 : 0) + (has.diabetes ? 0.4 : 0)));
  has.heartFailure = rnd.chance(logistic(-4.2 + 0.065 * a + (has.hypertension ? 0.7 : 0) + (has.diabetes ? 0.4 : 0) +
    (has.mi ? 1.3 : 0) + (ever ? 0.3 : 0) + lift));
  has.stroke = rnd.chance(logistic(-4.0 + 0.06 * a + (has.hypertension ? 0.6 : 0) + (current ? 0.5 : 0) +
    (has.diabetes ? 0.3 : 0)));
  has.copd = rnd.chance(logistic(-3.8 + 0.04 * a + (current ? 1.7 : ever ? 1.2 : 0) + lift));
  has.cancer = rnd.chance(logistic(-3.0 + 0.045 * a + (current ? 0.4 : 0) + lift));
  has.metastasis = has.cancer && rnd.chance(0.25);
  has.dementia = rnd.chance(logistic(-4.3 + 0.13 * a + lift));
  const ckdStage = has.ckd ? rnd.weighted([0, 1, 2, 3, 4], (s) => [0.08, 0.2, 0.5, 0.14, 0.08][s]) : undefined;
  const cancerSite = has.cancer
    ? rnd.weighted(['lung', 'colon', 'breast', 'prostate'], (s) =>
      ({ lung: ever ? 0.6 : 0.15, colon: 0.25, breast: male ? 0.01 : 0.45, prostate: male ? 0.45 : 0 })[s])
    : undefined;

  const severity = (has.heartFailure ? 1.0 : 0) + (has.copd ? 0.8 : 0) + (has.ckd ? (ckdStage >= 2 ? 0.7 : 0.3) : 0) +
    (has.diabetesComplicated ? 0.6 : 0) + (has.cancer ? 0.8 : 0) + (has.metastasis ? 1.2 : 0) + (has.dementia ? 0.6 : 0) +
    (has.mi ? 0.3 : 0) + (has.stroke ? 0.3 : 0) + (has.diabetes ? 0.15 : 0) + (has.hypertension ? 0.1 : 0);
  return { has, severity, ckdStage, cancerSite, ever };
}

/**
 * The Condition records of drawDisease's diseases, each begun before `horizon` (death, or the end
 * of the history): statuses, duplicates coded another way, acute illnesses, and decoys.
 */
function diseaseRecords(rnd, demo, disease, horizon) {
  const { birthMs, synthea } = demo;
  const { has, ckdStage, cancerSite } = disease;

  // Onsets: most chronic disease began before the history, some during it (incident).
  const earliest = Math.max(birthMs + 16 * YEAR_MS, HISTORY_START - 25 * YEAR_MS);
  const latest = horizon - DAY_MS;
  const within = (from, to) => from + rnd.next() * Math.max(0, to - from);
  const onset = (incident = 0.12) =>
    earliest >= HISTORY_START - 30 * DAY_MS || rnd.chance(incident)
      ? within(Math.max(earliest, HISTORY_START), latest)
      : within(earliest, HISTORY_START - 30 * DAY_MS);
  const later = (from, years) => within(from, Math.min(latest, from + years * YEAR_MS));
  const verification = () =>
    synthea ? 'confirmed' : rnd.weighted([['confirmed', 84], [undefined, 6], ['provisional', 5], ['unconfirmed', 5]], (x) => x[1])[0];

  const records = [];
  // A chronic disease: active mostly; now and then a recurrence, or inactive (some with the date it
  // became so).
  const chronic = (key, v, onsetMs, { relapse = false, remission = 0 } = {}) => {
    const rec = { key, variant: v, onsetMs, chronic: true, clinical: 'active', verification: verification() };
    const u = rnd.next();
    if (u < remission) {
      rec.clinical = 'remission';
      if (rnd.chance(0.7)) rec.abatementMs = later(onsetMs + 180 * DAY_MS, 3);
    } else if (u < remission + 0.04) {
      rec.clinical = relapse ? 'relapse' : 'recurrence';
    } else if (u < remission + 0.07) {
      rec.clinical = 'inactive';
      if (rnd.chance(0.5)) rec.abatementMs = later(onsetMs + 30 * DAY_MS, 5);
    }
    if (rec.abatementMs !== undefined && rec.abatementMs > latest) delete rec.abatementMs;
    records.push(rec);
    return rec;
  };
  const pickVariant = (key) => rnd.weighted(CONDITION_CODES[key]);

  if (has.hypertension) chronic('hypertension', pickVariant('hypertension'), onset(0.1));
  let diabetesOnset;
  if (has.diabetes) {
    diabetesOnset = onset(0.1);
    chronic('diabetes', pickVariant('diabetes'), diabetesOnset);
    if (rnd.chance(0.4)) {
      // Prediabetes before, resolved when the diabetes was diagnosed (as Synthea does).
      const pre = Math.max(earliest, diabetesOnset - rnd.int(1, 6) * YEAR_MS);
      if (pre < diabetesOnset) {
        records.push({ key: 'prediabetes', variant: pickVariant('prediabetes'), onsetMs: pre, clinical: 'resolved',
          abatementMs: diabetesOnset, verification: verification() });
      }
    }
  } else if (rnd.chance(0.18)) {
    records.push({ key: 'prediabetes', variant: pickVariant('prediabetes'), onsetMs: onset(0.1), chronic: true,
      clinical: 'active', verification: verification() });
  }
  if (has.diabetesComplicated) {
    const kinds = CONDITION_CODES.diabetesComplicated;
    const first = rnd.int(0, kinds.length - 1);
    const count = rnd.chance(0.3) ? 2 : 1;
    for (let i = 0; i < count; i++) {
      chronic('diabetesComplicated', kinds[(first + i) % kinds.length], later(diabetesOnset, 12));
    }
  }
  if (has.ckd) {
    const stageOnset = onset(0.15);
    chronic('ckd', rnd.weighted(CONDITION_CODES.ckd[ckdStage]), stageOnset);
    if (ckdStage >= 2 && rnd.chance(0.3)) {
      // Progressed: the earlier stage resolved when this one began.
      const earlier = Math.max(earliest, stageOnset - rnd.int(1, 5) * YEAR_MS);
      if (earlier < stageOnset) {
        records.push({ key: 'ckd', variant: rnd.weighted(CONDITION_CODES.ckd[ckdStage - 1]), onsetMs: earlier, chronic: true,
          clinical: 'resolved', abatementMs: stageOnset, verification: verification() });
      }
    }
  }
  if (has.heartFailure) chronic('heartFailure', pickVariant('heartFailure'), onset(0.12));
  if (has.copd) chronic('copd', pickVariant('copd'), onset(0.1));
  if (has.dementia) chronic('dementia', pickVariant('dementia'), onset(0.15));
  if (has.cancer) {
    const cancerOnset = onset(0.15);
    const site = cancerSite === 'prostate' && synthea ? 'prostateSynthea' : cancerSite;
    chronic('cancer', CONDITION_CODES.cancer[site], cancerOnset,
      has.metastasis ? { relapse: true } : { relapse: true, remission: 0.25 });
    if (has.metastasis) {
      const m = CONDITION_CODES.metastasis;
      const spread = { lung: [m.bone, m.any], colon: [m.colon, m.any], breast: [m.bone, m.lung, m.any], prostate: [m.bone, m.any] };
      chronic('metastasis', rnd.pick(spread[cancerSite]), later(cancerOnset, 4));
    }
  }
  if (has.mi) {
    const miOnset = onset(0.1);
    if (rnd.chance(0.5) && miOnset + 28 * DAY_MS < latest) {
      records.push({ key: 'mi', variant: pickVariant('mi'), onsetMs: miOnset, clinical: 'resolved',
        abatementMs: miOnset + 28 * DAY_MS, verification: verification() });
      chronic('miHistory', pickVariant('miHistory'), miOnset + 28 * DAY_MS);
    } else {
      chronic('mi', pickVariant('mi'), miOnset);
    }
  }
  if (has.stroke) {
    const strokeOnset = onset(0.1);
    if (rnd.chance(0.5) && strokeOnset + 30 * DAY_MS < latest) {
      records.push({ key: 'stroke', variant: pickVariant('stroke'), onsetMs: strokeOnset, clinical: 'resolved',
        abatementMs: strokeOnset + 30 * DAY_MS, verification: verification() });
    } else {
      chronic('stroke', pickVariant('stroke'), strokeOnset);
    }
  }
  // A comorbidity on the problem list also recorded as an encounter diagnosis, coded the other
  // way: active, or resolved after the encounter.
  if (!synthea) {
    for (const rec of [...records]) {
      if (!COMORBIDITIES.includes(rec.key) || rec.clinical !== 'active' || !rnd.chance(0.2)) continue;
      const at = within(Math.max(rec.onsetMs, HISTORY_START), latest);
      const dup = { key: rec.key, variant: rec.variant, onsetMs: at, clinical: 'active', verification: 'confirmed',
        category: 'encounter-diagnosis', coding: rnd.pick(['sct', 'icd', 'both']) };
      if (rnd.chance(0.5) && at + 10 * DAY_MS < latest) {
        dup.clinical = 'resolved';
        dup.abatementMs = at + rnd.int(1, 10) * DAY_MS;
      }
      records.push(dup);
    }
  }
  // Acute illnesses, resolved after one to three weeks (some still active at the end).
  const acute = rnd.int(0, 2) + (has.copd && rnd.chance(0.5) ? 1 : 0);
  for (let i = 0; i < acute; i++) {
    const key = rnd.weighted(['bronchitis', 'sinusitis', 'pharyngitis'], (k) => (k === 'bronchitis' && has.copd ? 3 : 1));
    const at = within(Math.max(earliest, HISTORY_START - 2 * YEAR_MS), latest);
    const ends = at + rnd.int(7, 21) * DAY_MS;
    records.push({ key, variant: pickVariant(key), onsetMs: at, verification: 'confirmed',
      ...(ends < latest ? { clinical: 'resolved', abatementMs: ends } : { clinical: 'active' }) });
  }
  // Decoys: a comorbidity ruled out (often still "active"), or entered in error (no clinicalStatus).
  const decoy = (verificationStatus) => {
    const options = ['heartFailure', 'copd', 'dementia', 'cancer', 'ckd'].filter((k) => !has[k]);
    if (!options.length) return;
    const key = rnd.pick(options);
    const v = key === 'cancer' ? CONDITION_CODES.cancer[rnd.pick(['lung', 'colon'])]
      : key === 'ckd' ? rnd.weighted(CONDITION_CODES.ckd[2]) : pickVariant(key);
    const rec = { key, variant: v, onsetMs: within(HISTORY_START, latest), verification: verificationStatus, decoy: true };
    if (verificationStatus === 'refuted') {
      rec.clinical = rnd.weighted([['active', 5], ['inactive', 3], ['resolved', 2]], (x) => x[1])[0];
      if (rec.clinical === 'resolved' && rec.onsetMs + 20 * DAY_MS < latest) rec.abatementMs = rec.onsetMs + rnd.int(3, 20) * DAY_MS;
      if (rec.clinical === 'resolved' && rec.abatementMs === undefined) rec.clinical = 'inactive';
    }
    records.push(rec);
  };
  if (rnd.chance(0.05)) decoy('refuted');
  if (rnd.chance(0.03)) decoy('entered-in-error');

  records.sort((x, y) => x.onsetMs - y.onsetMs);
  return records;
}

/**
 * A Condition from one record. Codings: Synthea's patients SNOMED CT (rarely ICD-10-CM or both),
 * the others SNOMED CT only, ICD-10-CM only or both, so that over all about 60/25/15%. Dates:
 * onsetDateTime and recordedDate (Synthea: both the same instant, `+00:00`); otherwise a full
 * instant, a date, or no onsetDateTime at all (recordedDate only); abatementDateTime when
 * resolved (or remission, inactive).
 */
function conditionResource(ctx, rec, stats) {
  const { rnd, synthea } = ctx;
  let coding = rec.coding;
  if (!coding) {
    const u = rnd.next();
    coding = synthea ? (u < 0.9 ? 'sct' : u < 0.92 ? 'icd' : 'both') : u < 0.471 ? 'sct' : u < 0.82 ? 'icd' : 'both';
  }
  const codings = [];
  if (coding !== 'icd') codings.push({ system: SNOMED, code: rec.variant.sct[0], display: rec.variant.sct[1] });
  if (coding !== 'sct') codings.push({ system: ICD10CM, code: rec.variant.icd[0], display: rec.variant.icd[1] });
  const category = rec.category ??
    (synthea || !rec.chronic ? 'encounter-diagnosis' : rnd.chance(0.8) ? 'problem-list-item' : 'encounter-diagnosis');
  const c = { resourceType: 'Condition' };
  if (synthea || rnd.chance(0.1)) {
    const profile = category === 'problem-list-item' ? 'us-core-condition-problems-health-concerns'
      : synthea && rnd.chance(0.5) ? 'us-core-condition' : 'us-core-condition-encounter-diagnosis';
    c.meta = { profile: [US_CORE + profile] };
  }
  if (rec.clinical) c.clinicalStatus = { coding: [{ system: CONDITION_CLINICAL, code: rec.clinical }] };
  if (rec.verification) c.verificationStatus = { coding: [{ system: CONDITION_VER_STATUS, code: rec.verification }] };
  c.category = [{ coding: [{ system: CONDITION_CATEGORY, code: category,
    display: category === 'problem-list-item' ? 'Problem List Item' : 'Encounter Diagnosis' }] }];
  c.code = { coding: codings, text: codings[0].display };
  c.subject = { reference: ctx.subjectRef };
  const form = synthea ? 'instant' : rnd.weighted([['instant', 60], ['date', 25], ['recorded', 15]], (x) => x[1])[0];
  const plus = synthea || rnd.chance(0.05);
  const when = (ms) => (form === 'date' ? isoDate(ms) : plus ? isoOffset(ms) : isoSeconds(ms));
  const onsetMs = Math.floor(rec.onsetMs / 1000) * 1000;
  if (form !== 'recorded') c.onsetDateTime = when(onsetMs);
  if (rec.abatementMs !== undefined) c.abatementDateTime = when(Math.floor(rec.abatementMs / 1000) * 1000);
  const recordedMs = synthea ? onsetMs : Math.max(onsetMs, Math.min(HISTORY_END, onsetMs + rnd.int(0, 30) * DAY_MS));
  c.recordedDate = when(recordedMs);

  stats.conditions++;
  stats.conditionsSnomedOnly += coding === 'sct' ? 1 : 0;
  stats.conditionsIcd10Only += coding === 'icd' ? 1 : 0;
  stats.conditionsBothCodings += coding === 'both' ? 1 : 0;
  stats.conditionsRefuted += rec.verification === 'refuted' ? 1 : 0;
  stats.conditionsEnteredInError += rec.verification === 'entered-in-error' ? 1 : 0;
  stats.conditionsRecordedDateOnly += form === 'recorded' ? 1 : 0;
  stats.conditionsResolved += rec.clinical === 'resolved' ? 1 : 0;
  return c;
}

// ---------------------------------------------------------------------------------------------
// Vital signs

// Vital signs by the patient's state when they are taken: [mean, sd, min, max] of heart rate,
// respiratory rate, SpO2 (%), temperature (Cel), systolic and diastolic pressure.
const VITAL_STATES = {
  // at a clinic visit
  well: {
    hr: [74, 9, 45, 120], rr: [15, 2, 10, 22], spo2: [97.5, 1.2, 93, 100],
    temp: [36.8, 0.3, 35.8, 37.7], sys: [122, 12, 90, 160], dia: [78, 8, 50, 100],
  },
  sick: {
    hr: [88, 12, 55, 130], rr: [18, 3, 10, 30], spo2: [94, 2.5, 82, 100],
    temp: [37.0, 0.4, 35.8, 38.8], sys: [140, 18, 90, 200], dia: [85, 11, 50, 120],
  },
  // on admission, or at an emergency visit: an acute episode, worse on top of chronic illness
  admitWell: {
    hr: [96, 14, 55, 150], rr: [20, 3, 12, 32], spo2: [94.5, 2.2, 85, 100],
    temp: [37.7, 0.8, 35.8, 40.2], sys: [134, 16, 90, 190], dia: [82, 10, 50, 115],
  },
  admitSick: {
    hr: [112, 15, 65, 170], rr: [25, 4, 14, 40], spo2: [89, 3.5, 75, 98],
    temp: [38.4, 0.9, 35.5, 40.8], sys: [152, 20, 90, 220], dia: [90, 12, 50, 130],
  },
  // a few hours before discharge: recovered; each sign may still be unstable (UNSTABLE)
  dischargeWell: {
    hr: [76, 9, 48, 115], rr: [16, 2, 10, 22], spo2: [96.8, 1.3, 92, 100],
    temp: [36.9, 0.3, 35.9, 37.8], sys: [124, 12, 90, 165], dia: [77, 8, 50, 100],
  },
  dischargeSick: {
    hr: [90, 10, 58, 140], rr: [19, 2.5, 12, 30], spo2: [94, 2, 85, 99],
    temp: [37.2, 0.4, 35.8, 38.9], sys: [136, 17, 90, 200], dia: [82, 10, 55, 120],
  },
};

// What the outcome counts as abnormal at discharge, on the values as recorded.
const ABNORMAL = {
  tachycardia: (v) => v.hr !== undefined && v.hr > 100,
  hypoxaemia: (v) => v.spo2 !== undefined && v.spo2 < 92,
  temperature: (v) => v.tempC !== undefined && (v.tempC >= 38.0 || v.tempC < 36.0),
  hypotension: (v) => v.sys !== undefined && v.sys < 100,
  tachypnoea: (v) => v.rr !== undefined && v.rr > 22,
};
// Unstable at discharge: [mean, sd, min, max], already on the abnormal side of ABNORMAL.
const UNSTABLE = {
  hr: [112, 8, 101, 150], rr: [25, 2, 23, 34], spo2: [89, 1.5, 82, 91], sys: [92, 4.5, 75, 99],
  fever: [38.5, 0.35, 38.0, 39.8], hypothermia: [35.6, 0.2, 34.8, 35.9],
};
const UNSTABLE_RATE = { well: 0.03, sick: 0.09 };

function drawVitals(rnd, state) {
  const v = VITAL_STATES[state];
  const draw = ([mean, sd, lo, hi]) => rnd.clampedNormal(mean, sd, lo, hi);
  const hr = Math.round(draw(v.hr));
  const rr = Math.round(draw(v.rr));
  const spo2 = Math.round(draw(v.spo2));
  const tempC = round(draw(v.temp), 1);
  const sys = Math.round(draw(v.sys));
  const dia = Math.min(sys - 20, Math.round(draw(v.dia)));
  return { hr, rr, spo2, tempC, sys, dia };
}

/**
 * The vital signs a few hours before discharge: each of the five signs the outcome reads is
 * unstable (drawn beyond its threshold) with probability UNSTABLE_RATE, and otherwise drawn again
 * until it is on the normal side.
 */
function dischargeVitals(rnd, sick) {
  const v = VITAL_STATES[sick ? 'dischargeSick' : 'dischargeWell'];
  const rate = UNSTABLE_RATE[sick ? 'sick' : 'well'];
  const stable = (spec, digits, ok, fallback) => {
    for (let i = 0; i < 20; i++) {
      const x = round(rnd.clampedNormal(...spec), digits);
      if (ok(x)) return x;
    }
    return fallback;
  };
  const unstable = (spec, digits) => round(rnd.clampedNormal(...spec), digits);
  const hr = rnd.chance(rate) ? unstable(UNSTABLE.hr, 0) : stable(v.hr, 0, (x) => x <= 100, 90);
  const rr = rnd.chance(rate) ? unstable(UNSTABLE.rr, 0) : stable(v.rr, 0, (x) => x <= 22, 20);
  const spo2 = rnd.chance(rate) ? unstable(UNSTABLE.spo2, 0) : stable(v.spo2, 0, (x) => x >= 92, 93);
  const tempC = rnd.chance(rate)
    ? unstable(rnd.chance(0.65) ? UNSTABLE.fever : UNSTABLE.hypothermia, 1)
    : stable(v.temp, 1, (x) => x >= 36.0 && x < 38.0, 37.0);
  const sys = rnd.chance(rate) ? unstable(UNSTABLE.sys, 0) : stable(v.sys, 0, (x) => x >= 100, 115);
  const dia = Math.min(sys - 20, Math.round(rnd.clampedNormal(...v.dia)));
  return { hr, rr, spo2, tempC, sys, dia };
}

/**
 * The Observations of the vital signs taken at one moment: heart rate, respiratory rate, SpO2,
 * temperature, weight and BMI when `kg` is given, a blood-pressure panel; a few percent untidy
 * (no value, entered in error, an unknown code). Synthea's patients get Synthea's shapes: panel
 * 55284-4 with the diastolic component first (3% of those without unit and code), oral
 * temperature 8331-1 on half, no meta, `issued`, `+00:00`, unrounded weights.
 */
function vitalSet(ctx, t, values, kg, setting, stats) {
  const { rnd, synthea, profile, subjectRef } = ctx;
  const { usesFahrenheit, usesPounds, heightM } = profile;
  const plus = synthea || rnd.chance(0.05);
  const effective = plus ? isoOffset(t) : isoSeconds(t);
  const issued = synthea ? new Date(t + rnd.int(0, 999)).toISOString().replace(/Z$/, '+00:00') : undefined;
  stats.observationSetsPlusOffset += plus ? 1 : 0;
  const make = (def, profiled = true) => {
    const o = vitalObservation(def, subjectRef, effective);
    if (synthea || !profiled) delete o.meta;
    if (rnd.chance(synthea ? 0.01 : 0.003)) {
      o.category = categoryOf('vital-sign', 'Vital Signs'); // sic: not in the code system
      stats.observationsCategoryVitalSign++;
    }
    if (issued) o.issued = issued;
    return o;
  };
  const point = [];

  const hr = make(VITALS.heartRate);
  hr.valueQuantity = quantity(values.hr, synthea ? '/min' : 'beats/minute', '/min');
  point.push(hr);

  const rr = make(VITALS.respRate);
  rr.valueQuantity = quantity(values.rr, synthea ? '/min' : 'breaths/minute', '/min');
  point.push(rr);

  const spo2 = make(VITALS.spo2);
  spo2.valueQuantity = quantity(values.spo2, '%', '%');
  point.push(spo2);

  const oral = rnd.chance(synthea ? 0.5 : 0.03);
  const temp = make(oral ? VITALS.oralTemperature : VITALS.temperature, !oral);
  stats.temperaturesOral += oral ? 1 : 0;
  let celsius = values.tempC; // one decimal
  if (synthea && celsius >= 36.5 && celsius < 37.5 && rnd.chance(0.25)) celsius = 37; // a JSON integer
  if (usesFahrenheit) {
    let f = round((celsius * 9) / 5 + 32, 1);
    // 96.8 and 100.4 are 36.0 and 38.0 exactly, which float arithmetic may put on either side.
    if (f === 96.8) f = 96.9;
    if (f === 100.4) f = 100.5;
    temp.valueQuantity = quantity(f, '°F', '[degF]');
  } else {
    temp.valueQuantity = quantity(celsius, synthea ? 'Cel' : '°C', 'Cel');
  }
  point.push(temp);

  if (kg !== undefined) {
    const weight = make(VITALS.weight);
    weight.valueQuantity = usesPounds
      ? quantity(round(kg * 2.20462, 1), 'lb', '[lb_av]')
      : quantity(synthea ? kg : round(kg, 1), 'kg', 'kg');
    point.push(weight);

    const bmi = make(VITALS.bmi);
    bmi.valueQuantity = quantity(synthea ? kg / (heightM * heightM) : round(kg / (heightM * heightM), 1), 'kg/m2', 'kg/m2');
    point.push(bmi);
  }

  if (rnd.chance(synthea ? 0.9 : 0.03)) {
    const bp = make(VITALS.bloodPressureSynthea, false);
    const bare = rnd.chance(0.03); // value and system only, as in 45 of Synthea's panels
    const q = (v) => (bare ? { value: v, system: UCUM } : quantity(v, 'mm[Hg]', 'mm[Hg]'));
    bp.component = [
      { code: codeOf(VITALS.diastolicSynthea), valueQuantity: q(values.dia) },
      { code: codeOf(VITALS.systolicSynthea), valueQuantity: q(values.sys) },
    ];
    point.push(bp);
    stats.bloodPressurePanels55284++;
    stats.bloodPressurePanelsWithoutUnit += bare ? 1 : 0;
  } else {
    const bp = make(VITALS.bloodPressure);
    bp.component = [
      { code: codeOf(VITALS.systolic), valueQuantity: quantity(values.sys, 'mmHg', 'mm[Hg]') },
      { code: codeOf(VITALS.diastolic), valueQuantity: quantity(values.dia, 'mmHg', 'mm[Hg]') },
    ];
    point.push(bp);
  }

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
  if (synthea && setting === 'clinic') {
    const pain = make(VITALS.pain, false);
    pain.valueQuantity = quantity(rnd.int(0, 4), '{score}', '{score}');
    point.push(pain);
  }
  return point;
}

// An Observation that is not a vital sign (smoking status, survey answers, cause of death).
function otherObservation(ctx, t, category, def, value) {
  const { synthea, rnd } = ctx;
  const plus = synthea || rnd.chance(0.05);
  const o = { resourceType: 'Observation', status: 'final' };
  if (category) o.category = categoryOf(...category);
  Object.assign(o, {
    code: { coding: [{ system: LOINC, code: def.code, display: def.display }], text: def.display },
    subject: { reference: ctx.subjectRef },
    effectiveDateTime: plus ? isoOffset(t) : isoSeconds(t),
  });
  if (synthea) o.issued = new Date(t + rnd.int(0, 999)).toISOString().replace(/Z$/, '+00:00');
  Object.assign(o, value);
  return o;
}

const answer = (system, [code, display]) => ({ valueCodeableConcept: { coding: [{ system, code, display }], text: display } });

function smokingObservation(ctx, t, status, stats) {
  const o = otherObservation(ctx, t, ['social-history', 'Social History'], SMOKING_STATUS, answer(SNOMED, SMOKING_ANSWERS[status]));
  if (ctx.synthea || ctx.rnd.chance(0.3)) o.meta = { profile: [US_CORE + 'us-core-smokingstatus'] };
  stats.smokingObservations++;
  return o;
}

// Survey answers at a clinic visit: PHQ-2 (two coded answers and the total score), housing
// status (valueString, or a coded answer).
function surveyObservations(ctx, t, sick, stats) {
  const { rnd, synthea } = ctx;
  const out = [];
  const survey = ['survey', 'Survey'];
  if (rnd.chance(synthea ? 0.4 : 0.2)) {
    const a = Math.min(3, Math.floor(rnd.next() * (sick ? 3.5 : 2)));
    const b = Math.min(3, Math.floor(rnd.next() * (sick ? 3.5 : 2)));
    out.push(otherObservation(ctx, t, survey, { code: '44250-9', display: 'Little interest or pleasure in doing things' },
      answer(LOINC, PHQ_ANSWERS[a])));
    out.push(otherObservation(ctx, t, survey, { code: '44255-8', display: 'Feeling down, depressed, or hopeless' },
      answer(LOINC, PHQ_ANSWERS[b])));
    out.push(otherObservation(ctx, t, survey, { code: '55758-7', display: 'Patient Health Questionnaire 2 item (PHQ-2) total score [Reported]' },
      { valueQuantity: quantity(a + b, '{score}', '{score}') }));
    stats.observationsSurveyCoded += 2;
  }
  if (rnd.chance(synthea ? 0.2 : 0.08)) {
    const housing = HOUSING_ANSWERS[rnd.chance(0.07) ? 1 : 0];
    if (synthea || rnd.chance(0.5)) {
      out.push(otherObservation(ctx, t, survey, HOUSING, { valueString: housing[1] }));
      stats.observationsValueString++;
    } else {
      out.push(otherObservation(ctx, t, survey, HOUSING, answer(LOINC, housing)));
      stats.observationsSurveyCoded++;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Encounters

const ENCOUNTER_CLASS = {
  IMP: { system: ACT_CODE, code: 'IMP', display: 'inpatient encounter' },
  AMB: { system: ACT_CODE, code: 'AMB', display: 'ambulatory' },
  EMER: { system: ACT_CODE, code: 'EMER', display: 'emergency' },
};
const snomedType = (code, display) => ({ coding: [{ system: SNOMED, code, display }], text: display });
const ENCOUNTER_TYPE = {
  IMP: snomedType('32485007', 'Hospital admission'),
  AMB: snomedType('185349003', 'Encounter for check up'),
  symptom: snomedType('185345009', 'Encounter for symptom'),
};
// Synthea's one emergency code under three displays.
const EMERGENCY_DISPLAYS = ['Emergency room admission (procedure)', 'Emergency Room Admission', 'Emergency Encounter'];
const PRIORITY = {
  EM: { coding: [{ system: ACT_PRIORITY, code: 'EM', display: 'emergency' }] },
  EL: { coding: [{ system: ACT_PRIORITY, code: 'EL', display: 'elective' }] },
};
const FROM_EMERGENCY = { coding: [{ system: ADMIT_SOURCE, code: 'emd', display: 'From accident/emergency department' }] };

function encounterResource(ctx, cls, startMs, endMs, status, extra = {}) {
  const { rnd, synthea } = ctx;
  const plus = synthea || rnd.chance(0.05);
  const at = plus ? isoOffset : isoSeconds;
  const e = { resourceType: 'Encounter' };
  if (synthea) {
    e.meta = { profile: [US_CORE + 'us-core-encounter'] };
    e.identifier = [{ use: 'official', system: SYNTHEA_SYSTEM, value: makeUuid(rnd.next) }];
  }
  e.status = status;
  e.class = ENCOUNTER_CLASS[cls];
  if (cls === 'EMER') {
    e.type = [snomedType('50849002', rnd.pick(EMERGENCY_DISPLAYS))];
  } else {
    e.type = [extra.type ?? ENCOUNTER_TYPE[cls]];
  }
  if (extra.priority) e.priority = PRIORITY[extra.priority];
  e.subject = { reference: ctx.subjectRef, ...(synthea ? { display: ctx.display } : undefined) };
  if (synthea || rnd.chance(0.1)) {
    e.participant = [{
      type: [{ coding: [{ system: PARTICIPATION_TYPE, code: 'PPRF', display: 'primary performer' }], text: 'primary performer' }],
      period: { start: at(startMs), end: at(endMs) },
      individual: { display: cls === 'AMB' ? ctx.practitioner : practitionerName(rnd) },
    }];
  }
  e.period = { start: at(startMs), end: at(endMs) };
  if (extra.admitSource) e.hospitalization = { admitSource: FROM_EMERGENCY };
  return e;
}

// ---------------------------------------------------------------------------------------------
// The outcome: readmission within 30 days of a discharge

/**
 * Logistic model of a readmission within 30 days after a discharge at time t (coefficients are
 * log odds ratios; README.md, "Outcome model"). Every input is read from the generated resources
 * as of t (`riskFactorsAt`), as the adapter's features would be:
 *
 *   logit p = intercept
 *     + 0.06 * min(length of stay in days, 14)
 *     + 0.45 * emergent admission (priority EM, admitSource emd, or an EMER encounter that
 *              began before the stay and ended less than a day before it began, or later)
 *     + 0.45 heart failure + 0.35 COPD + 0.35 CKD (any stage) + 0.30 diabetes with complications
 *       + 0.30 cancer + 0.55 metastasis + 0.30 dementia   (Conditions that hold at t)
 *     + 0.30 * min(other inpatient stays that began in the 365 days up to t, 4)
 *     + 0.20 * min(EMER encounters that began in the 183 days before the stay's start, not the
 *              one that led to the stay, 4)
 *     + 0.02 * max(0, age in years at t - 50)   (year of t minus year of birth)
 *     + 0.35 heart rate > 100 + 0.45 SpO2 < 92 + 0.35 temperature >= 38.0 or < 36.0 Cel
 *       + 0.40 systolic < 100 + 0.35 respiratory rate > 22   (the latest value in the 365 days
 *              up to t of each; temperature from 8310-5 or 8331-1)
 *     + frailty, a patient's own N(0, 0.5) that no data shows
 *
 * p is capped at 0.85. Nothing lowers the risk but the absence of a factor.
 */
const READMISSION_MODEL = Object.freeze({
  intercept: -3.85,
  lengthOfStayPerDay: 0.06,
  lengthOfStayCapDays: 14,
  emergent: 0.45,
  comorbidity: Object.freeze({
    heartFailure: 0.45, copd: 0.35, ckd: 0.35, diabetesComplicated: 0.3, cancer: 0.3, metastasis: 0.55, dementia: 0.3,
  }),
  priorAdmission: 0.3,
  priorAdmissionCap: 4,
  priorAdmissionDays: 365,
  emergencyVisit: 0.2,
  emergencyVisitCap: 4,
  emergencyVisitDays: 183,
  agePerYear: 0.02,
  ageFrom: 50,
  abnormal: Object.freeze({ tachycardia: 0.35, hypoxaemia: 0.45, temperature: 0.35, hypotension: 0.4, tachypnoea: 0.35 }),
  vitalsWindowDays: 365,
  frailtySd: 0.5,
  cap: 0.85,
});

function readmissionLogit(f) {
  const m = READMISSION_MODEL;
  let z = m.intercept;
  z += m.lengthOfStayPerDay * Math.min(f.lengthOfStayDays, m.lengthOfStayCapDays);
  z += f.emergent ? m.emergent : 0;
  for (const c of f.comorbidities) z += m.comorbidity[c];
  z += m.priorAdmission * Math.min(f.priorAdmissions, m.priorAdmissionCap);
  z += m.emergencyVisit * Math.min(f.emergencyVisits, m.emergencyVisitCap);
  z += m.agePerYear * Math.max(0, f.ageYears - m.ageFrom);
  for (const a of f.abnormal) z += m.abnormal[a];
  return z;
}

/** The probability of a readmission within 30 days, from riskFactorsAt's factors. */
function readmissionProbability(factors, frailty = 0) {
  return Math.min(READMISSION_MODEL.cap, logistic(readmissionLogit(factors) + frailty));
}

const COUNTING_OBSERVATION = new Set(['final', 'amended', 'corrected', 'preliminary']);
const NOT_COUNTING_ENCOUNTER = new Set(['cancelled', 'entered-in-error']);
const hasLoinc = (concept, codes) => (concept?.coding ?? []).some((c) => c.system === LOINC && codes.includes(c.code));
const usable = (q) => q && typeof q.value === 'number' && q.system === UCUM && typeof q.code === 'string';

/** The latest value of each sign the outcome reads, in the window up to t. */
function vitalsAsOf(observations, t) {
  const since = t - READMISSION_MODEL.vitalsWindowDays * DAY_MS;
  const latest = {};
  const take = (key, ms, value) => {
    const l = latest[key];
    if (!l || ms > l.ms || (ms === l.ms && value > l.value)) latest[key] = { ms, value };
  };
  for (const o of observations) {
    if (!COUNTING_OBSERVATION.has(o.status)) continue;
    const ms = Date.parse(o.effectiveDateTime);
    if (!(ms <= t && ms > since)) continue;
    const q = o.valueQuantity;
    if (usable(q)) {
      if (hasLoinc(o.code, ['8867-4'])) take('hr', ms, q.value);
      else if (hasLoinc(o.code, ['9279-1'])) take('rr', ms, q.value);
      else if (hasLoinc(o.code, ['59408-5', '2708-6'])) take('spo2', ms, q.value);
      else if (hasLoinc(o.code, ['8310-5', '8331-1'])) take('tempC', ms, q.code === '[degF]' ? ((q.value - 32) * 5) / 9 : q.value);
    }
    for (const c of o.component ?? []) {
      if (hasLoinc(c.code, ['8480-6']) && usable(c.valueQuantity)) take('sys', ms, c.valueQuantity.value);
    }
  }
  return Object.fromEntries(['hr', 'rr', 'spo2', 'tempC', 'sys'].filter((k) => latest[k]).map((k) => [k, latest[k].value]));
}

/** The comorbidities (COMORBIDITIES) some Condition holds at t. */
function comorbiditiesAt(conditions, t) {
  const found = new Set();
  for (const c of conditions) {
    const verification = c.verificationStatus?.coding?.[0]?.code;
    if (verification === 'refuted' || verification === 'entered-in-error') continue;
    const begun = c.onsetDateTime ?? c.recordedDate;
    if (begun === undefined || Date.parse(begun) > t) continue;
    const clinical = c.clinicalStatus?.coding?.[0]?.code ?? '';
    const abated = c.abatementDateTime === undefined ? undefined : Date.parse(c.abatementDateTime);
    const active = ['active', 'recurrence', 'relapse'].includes(clinical) || (clinical === '' && abated === undefined);
    if (!active && !(abated !== undefined && abated > t)) continue;
    for (const coding of c.code.coding) {
      const category = CATEGORY_OF.get(`${coding.system}|${coding.code}`);
      if (category) found.add(category);
    }
  }
  return COMORBIDITIES.filter((c) => found.has(c));
}

const period = (e) => [Date.parse(e.period.start), Date.parse(e.period.end)];
// An emergency visit that led to a stay: began before the stay did and had not ended, or had
// ended less than a day before, when the stay began.
function ledTo(visit, stay) {
  const [vs, ve] = period(visit);
  const [ss] = period(stay);
  return visit !== stay && visit.class.code === 'EMER' && vs < ss && ve > ss - DAY_MS;
}

/** Everything the outcome reads at the discharge of `stay` (an IMP Encounter), as of its end. */
function riskFactorsAt(stay, encounters, observations, conditions, birthYear) {
  const m = READMISSION_MODEL;
  const [start, t] = period(stay);
  const counting = encounters.filter((e) => !NOT_COUNTING_ENCOUNTER.has(e.status));
  const emergent = stay.priority?.coding?.[0]?.code === 'EM' ||
    stay.hospitalization?.admitSource?.coding?.[0]?.code === 'emd' || counting.some((e) => ledTo(e, stay));
  const priorAdmissions = counting.filter((e) => {
    const [s] = period(e);
    return e !== stay && e.class.code === 'IMP' && s <= t && s > t - m.priorAdmissionDays * DAY_MS;
  }).length;
  const emergencyVisits = counting.filter((e) => {
    const [s] = period(e);
    return e.class.code === 'EMER' && s < start && s > start - m.emergencyVisitDays * DAY_MS && !ledTo(e, stay);
  }).length;
  const vitals = vitalsAsOf(observations, t);
  return {
    lengthOfStayDays: (t - start) / DAY_MS,
    emergent,
    priorAdmissions,
    emergencyVisits,
    ageYears: new Date(t).getUTCFullYear() - birthYear,
    comorbidities: comorbiditiesAt(conditions, t),
    vitals,
    abnormal: Object.keys(ABNORMAL).filter((k) => ABNORMAL[k](vitals)),
  };
}

// ---------------------------------------------------------------------------------------------
// A patient's care

// Milliseconds to the next event of a Poisson process with `perDay` events a day.
const exponentialMs = (rnd, perDay) => (-Math.log(1 - rnd.next()) / perDay) * DAY_MS;
// Down to the quarter hour, as charted times are.
const quarterHour = (ms) => Math.floor(ms / 900e3) * 900e3;

/**
 * A patient's Encounters (in order of start) and Observations (in order of time).
 *
 * Planned first: check-ups (office hours) and emergency visits (class EMER, a Poisson process,
 * more often for the sicker), each with vital signs. Then inpatient stays in order: admissions
 * come as a Poisson process (more often for the sicker); a stay is emergent or elective, and an
 * emergent one is shown by an EMER encounter ending up to 3 hours before it (70%), priority EM
 * and/or admitSource emd; the sicker stay longer. Each stay has vital signs on admission and a few
 * hours before discharge (each charted 92% of the time), the latter unstable now and then. At the
 * discharge, READMISSION_MODEL reads what the resources so far hold, and another stay follows
 * within 30 days with its probability, otherwise not for at least 30 days. A check-up or
 * emergency visit a stay overlaps (within 2 days before it to a day after) does not take place.
 * About half of the discharges get a follow-up visit 5 to 14 days later. Clinic visits record
 * smoking status and now and then survey answers. About 3% of encounters are followed by a
 * cancelled one within 30 days.
 */
function makeCare(ctx, info, stats, discharges) {
  const { rnd, profile } = ctx;
  const { sick, severity, demo, deathMs, frailty, smoking, conditions, disease } = info;
  const { age, birthMs } = demo;
  const birthYear = new Date(birthMs).getUTCFullYear();
  const horizon = deathMs === undefined ? HISTORY_END : deathMs - DAY_MS;
  // Slow weight loss of chronic illness, and noise of the scales.
  const weightAt = (ms) =>
    Math.max(35, profile.baseWeightKg - (sick ? (0.008 * (ms - HISTORY_START)) / DAY_MS : 0) + rnd.normal(0, 0.5));
  const clinicState = sick ? 'sick' : 'well';
  const acuteState = sick ? 'admitSick' : 'admitWell';

  // An event: an encounter and the vital signs taken at it.
  const materialize = (event) => {
    event.encounter = encounterResource(ctx, event.cls, event.startMs, event.endMs, 'finished', event.extra);
    event.observations = event.sets.flatMap((s) => vitalSet(ctx, s.ms, s.values, s.kg, s.setting, stats));
    return event;
  };

  let background = [];
  const checkups = sick ? rnd.int(1, 3) : rnd.int(1, 4);
  for (let i = 0; i < checkups; i++) {
    const startMs = HISTORY_START + rnd.int(0, 725) * DAY_MS + rnd.int(32, 68) * 900e3;
    const endMs = startMs + rnd.int(2, 12) * 900e3;
    const at = startMs + rnd.int(0, 2) * 900e3;
    const kg = rnd.chance(0.5) ? weightAt(at) : undefined;
    background.push({ kind: 'checkup', cls: 'AMB', startMs, endMs, sets: [{ ms: at, values: drawVitals(rnd, clinicState), kg, setting: 'clinic' }] });
  }
  const emergencyPerDay = (0.2 + 0.45 * Math.min(severity, 4) + (smoking.status === 'current' ? 0.2 : 0) + (age >= 80 ? 0.2 : 0)) / 730;
  for (let t = HISTORY_START + exponentialMs(rnd, emergencyPerDay); t < HISTORY_END; t += exponentialMs(rnd, emergencyPerDay)) {
    const startMs = quarterHour(t);
    const endMs = startMs + rnd.int(6, 32) * 900e3;
    background.push({ kind: 'emergency', cls: 'EMER', startMs, endMs,
      sets: [{ ms: startMs + rnd.int(1, 3) * 900e3, values: drawVitals(rnd, acuteState), setting: 'emergency' }] });
  }
  background = background.filter((e) => e.endMs < horizon).map(materialize);

  const events = []; // stays, the emergency visits before them, follow-ups
  const stays = [];
  const admissionsPerDay = (0.25 + 0.5 * Math.min(severity, 4) + 0.008 * Math.max(0, age - 55)) / 730;
  let t = HISTORY_START + exponentialMs(rnd, admissionsPerDay);
  let readmission = false;
  let followUp; // the last discharge's follow-up visit, until the next stay shows whether it fits
  const addFollowUp = (beforeMs) => {
    if (followUp && followUp.endMs < beforeMs) {
      events.push(materialize(followUp));
      stats.followUpVisits++;
    }
    followUp = undefined;
  };
  while (stays.length < 12) {
    const startMs = quarterHour(t);
    const emergent = rnd.chance(readmission ? 0.75 : sick ? 0.65 : 0.55);
    const medianDays = 3.2 * Math.exp(0.12 * Math.min(severity, 4)) * (emergent ? 1.15 : 1);
    const days = Math.min(25, Math.max(1, medianDays * Math.exp(rnd.normal(0, 0.5))));
    const endMs = quarterHour(startMs + days * DAY_MS);
    if (endMs > horizon) break;
    background = background.filter((e) => !(e.endMs > startMs - 2 * DAY_MS && e.startMs < endMs + DAY_MS));
    addFollowUp(startMs - DAY_MS);

    const stay = { kind: 'stay', cls: 'IMP', startMs, endMs, sets: [], extra: {} };
    let viaEmergency = false;
    if (emergent) {
      viaEmergency = rnd.chance(0.7);
      const priority = rnd.chance(viaEmergency ? 0.4 : 0.6);
      const admitSource = rnd.chance(viaEmergency ? 0.5 : 0.6);
      if (priority || admitSource || viaEmergency) {
        stay.extra = { priority: priority ? 'EM' : undefined, admitSource };
      } else {
        stay.extra = { priority: 'EM' };
      }
    } else if (rnd.chance(0.4)) {
      stay.extra = { priority: 'EL' };
    }
    if (viaEmergency) {
      const edEnd = startMs - rnd.int(0, 12) * 900e3;
      const edStart = edEnd - rnd.int(8, 32) * 900e3;
      events.push(materialize({ kind: 'emergencyBeforeStay', cls: 'EMER', startMs: edStart, endMs: edEnd,
        sets: [{ ms: edStart + rnd.int(1, 3) * 900e3, values: drawVitals(rnd, acuteState), setting: 'emergency' }] }));
    }
    // Now and then a set was not charted (or charted elsewhere): earlier values, or none, count.
    if (rnd.chance(0.92)) {
      const admitted = startMs + (viaEmergency ? rnd.int(0, 8) : rnd.int(-8, 8)) * 900e3;
      const fluidKg = sick ? 1 + 3 * rnd.next() : rnd.next();
      stay.sets.push({ ms: admitted, values: drawVitals(rnd, acuteState), kg: weightAt(admitted) + fluidKg, setting: 'ward' });
    }
    if (rnd.chance(0.92)) {
      const discharged = endMs - rnd.int(2, 16) * 900e3;
      const leftKg = sick ? 1.2 * rnd.next() : 0;
      stay.sets.push({ ms: discharged, values: dischargeVitals(rnd, sick), kg: weightAt(discharged) + leftKg, setting: 'ward' });
    }
    events.push(materialize(stay));
    stays.push(stay);

    // The outcome, from what the resources hold at the discharge.
    const pool = [...events, ...background];
    const factors = riskFactorsAt(stay.encounter, pool.map((e) => e.encounter), pool.flatMap((e) => e.observations),
      conditions, birthYear);
    const probability = readmissionProbability(factors, frailty);
    readmission = rnd.chance(probability);
    stay.factors = factors;
    stay.probability = probability;
    stats.emergentStays += factors.emergent ? 1 : 0;
    stats.staysAfterEmergencyVisit += viaEmergency ? 1 : 0;
    stats.staysPriorityEmergency += stay.extra.priority === 'EM' ? 1 : 0;
    stats.staysAdmittedFromEmergency += stay.extra.admitSource ? 1 : 0;
    stats.staysElective += stay.extra.priority === 'EL' ? 1 : 0;

    if (rnd.chance(0.5)) {
      const day = Math.floor((endMs + rnd.int(5, 14) * DAY_MS) / DAY_MS) * DAY_MS;
      const fuStart = day + rnd.int(32, 68) * 900e3;
      const at = fuStart + rnd.int(0, 2) * 900e3;
      followUp = { kind: 'followUp', cls: 'AMB', startMs: fuStart, endMs: fuStart + rnd.int(2, 6) * 900e3,
        sets: [{ ms: at, values: drawVitals(rnd, clinicState), kg: rnd.chance(0.5) ? weightAt(at) : undefined, setting: 'clinic' }] };
    }
    if (readmission) {
      // Readmissions come early more often than late.
      const u = rnd.next();
      t = endMs + (1 + Math.floor(28 * u * u)) * DAY_MS + rnd.int(0, 23) * 3600e3;
    } else {
      t = endMs + READMISSION_DAYS * DAY_MS + exponentialMs(rnd, admissionsPerDay);
    }
  }
  addFollowUp(horizon);

  for (let i = 0; i < stays.length; i++) {
    const s = stays[i];
    const next = stays[i + 1];
    const readmitted = !!next && next.startMs - s.endMs <= READMISSION_DAYS * DAY_MS;
    stats.readmissions += readmitted ? 1 : 0;
    const f = s.factors;
    discharges.push({
      patient: demo.mrn,
      admitted: isoSeconds(s.startMs),
      discharged: isoSeconds(s.endMs),
      lengthOfStayDays: round(f.lengthOfStayDays, 4),
      emergent: f.emergent,
      priorAdmissions: f.priorAdmissions,
      emergencyVisits: f.emergencyVisits,
      ageYears: f.ageYears,
      comorbidities: f.comorbidities,
      vitals: f.vitals,
      abnormal: f.abnormal,
      sick,
      logit: round(readmissionLogit(f), 6),
      probability: round(s.probability, 6),
      readmitted,
      // Too close to the end of the history (or death) for a readmission to show.
      censored: s.endMs + READMISSION_DAYS * DAY_MS > horizon,
      died: deathMs !== undefined && deathMs < s.endMs + READMISSION_DAYS * DAY_MS,
    });
  }

  const all = [...events, ...background];
  const ambulatory = all.filter((e) => e.cls === 'AMB').sort((x, y) => x.startMs - y.startMs);
  const extraObservations = [];
  // Smoking status at clinic visits: the latest is the current status.
  if (smoking.recorded) {
    const recordedAt = ambulatory.filter(() => rnd.chance(0.85));
    recordedAt.forEach((e, i) => {
      const ms = e.startMs + rnd.int(1, 4) * 900e3;
      let status = smokingAt(smoking, ms);
      if (smoking.unknownOnly || (i < recordedAt.length - 1 && rnd.chance(0.06))) status = 'unknown';
      extraObservations.push(smokingObservation(ctx, ms, status, stats));
    });
  }
  for (const e of ambulatory) {
    extraObservations.push(...surveyObservations(ctx, e.startMs + rnd.int(1, 4) * 900e3, sick, stats));
  }
  // Ejection fraction (category `vital-sign`, as in Synthea) at a visit after heart failure began.
  const hf = disease.records.find((r) => r.key === 'heartFailure' && !r.decoy);
  if (hf && rnd.chance(0.6)) {
    const visit = ambulatory.find((e) => e.startMs > hf.onsetMs);
    if (visit) {
      const o = otherObservation(ctx, visit.startMs + 900e3, ['vital-sign', 'Vital Signs'], VITALS.ejectionFraction,
        { valueQuantity: quantity(rnd.chance(0.5) ? rnd.int(20, 40) : rnd.int(50, 65), '%', '%') });
      extraObservations.push(o);
      stats.observationsCategoryVitalSign++;
    }
  }

  const encounters = all.map((e) => ({ startMs: e.startMs, endMs: e.endMs, resource: e.encounter }));
  stats.encountersEmergency += all.filter((e) => e.cls === 'EMER').length;
  for (const e of [...encounters]) {
    if (rnd.chance(0.03)) {
      const inpatient = rnd.chance(0.5);
      const startMs = quarterHour(e.endMs + rnd.int(1, 29) * DAY_MS + rnd.int(0, 23) * 3600e3);
      const endMs = startMs + (inpatient ? rnd.int(1, 5) * DAY_MS : rnd.int(2, 8) * 900e3);
      if (endMs < REFERENCE_DATE) {
        const resource = encounterResource(ctx, inpatient ? 'IMP' : 'AMB', startMs, endMs, 'cancelled');
        encounters.push({ startMs, endMs, resource });
        stats.encountersCancelled++;
      }
    }
  }
  // An ambulatory encounter that lasts decades (as a few of Synthea's do).
  if (age >= 45 && rnd.chance(0.008)) {
    const endMs = HISTORY_START + rnd.int(30, 700) * DAY_MS + rnd.int(32, 68) * 900e3;
    const startMs = endMs - rnd.int(4000, 15000) * DAY_MS;
    if (endMs < horizon && startMs > birthMs + 18 * YEAR_MS) {
      encounters.push({ startMs, endMs, resource: encounterResource(ctx, 'AMB', startMs, endMs, 'finished', { type: ENCOUNTER_TYPE.symptom }) });
      stats.encountersDecadesLong++;
    }
  }
  // After death: the cause of death a few days later, and now and then a whole visit.
  if (deathMs !== undefined && rnd.chance(0.35)) {
    const causes = ['metastasis', 'cancer', 'heartFailure', 'copd', 'dementia', 'stroke', 'mi']
      .map((k) => disease.records.find((r) => r.key === k && !r.decoy)).filter(Boolean);
    const cause = causes.length ? causes[0].variant.sct : CONDITION_CODES.mi[0].sct;
    extraObservations.push(otherObservation(ctx, deathMs + rnd.int(2, 13) * DAY_MS, undefined,
      { code: '69453-9', display: 'Cause of Death [US Standard Certificate of Death]' }, answer(SNOMED, cause)));
    stats.observationsAfterDeath++;
    if (rnd.chance(0.4)) {
      const startMs = Math.floor((deathMs + rnd.int(5, 6) * DAY_MS) / DAY_MS) * DAY_MS + rnd.int(32, 68) * 900e3;
      const visit = materialize({ kind: 'afterDeath', cls: 'AMB', startMs, endMs: startMs + rnd.int(2, 6) * 900e3,
        sets: [{ ms: startMs + 900e3, values: drawVitals(rnd, clinicState), kg: weightAt(startMs), setting: 'clinic' }] });
      encounters.push({ startMs, endMs: visit.endMs, resource: visit.encounter });
      extraObservations.push(...visit.observations);
      stats.observationsAfterDeath += visit.observations.length;
      stats.encountersAfterDeath++;
    }
  }
  encounters.sort((a, b) => a.startMs - b.startMs);

  stats.inpatientStays += stays.length;
  stats.encountersInpatient += encounters.filter((e) => e.resource.class.code === 'IMP').length;
  const observations = [...all.flatMap((e) => e.observations), ...extraObservations]
    .map((o) => ({ ms: Date.parse(o.effectiveDateTime), o }))
    .sort((a, b) => a.ms - b.ms)
    .map((x) => x.o);
  return { encounters: encounters.map((e) => e.resource), observations };
}

// ---------------------------------------------------------------------------------------------
// The shifted population (`shift`), for testing drift monitoring

/**
 * What `shift` changes, and nothing else. The population is drawn exactly as without it (the same
 * random draws, in the same order), and each patient's data, once drawn, is shown
 *   - older: birthDate `ageYears` earlier (at most `maxAge` years old at the reference date);
 *   - sicker: each of `comorbidities` drawn a second time (drawDisease's model, with the odds
 *     `comorbidityOddsRatio` times as high) for the patients who do not have it; a patient who gets
 *     one gets an active, confirmed Condition for it (begun before or during the history, as the
 *     others);
 *   - measured by another pulse oximeter: every SpO2 value (59408-5/2708-6) `spo2Points` lower,
 *     within `spo2Range` (an entered-in-error record's tenfold wrong value stays tenfold).
 * The shift's own random draws come from a generator of their own (seeded from the seed). As the
 * shift comes after the care was drawn, admissions, stays, emergency visits, vital signs but SpO2,
 * weights, smoking, death and the outcome (and `discharges`) are those of the unshifted age and
 * diseases: the data moves, not what happens.
 */
const SHIFT = Object.freeze({
  ageYears: 15,
  maxAge: 100,
  comorbidities: Object.freeze(['heartFailure', 'copd', 'ckd', 'diabetesComplicated', 'cancer', 'dementia']),
  comorbidityOddsRatio: 10,
  spo2Points: 3,
  spo2Range: Object.freeze([50, 100]),
  seedMask: 0x2f6b1c35,
});

// The demographics, older.
function olderDemo(demo) {
  const years = Math.max(0, Math.min(SHIFT.ageYears, SHIFT.maxAge - demo.age));
  return { ...demo, age: demo.age + years, birthMs: demo.birthMs - years * 365.25 * DAY_MS };
}

// The Conditions of the comorbidities the second draw adds (`ctx.rnd`: the shift's generator).
function shiftedConditions(ctx, demo, smoking, disease, horizon, stats) {
  const { rnd } = ctx;
  const extra = drawDisease(rnd, demo, smoking, Math.log(SHIFT.comorbidityOddsRatio));
  const earliest = Math.max(demo.birthMs + 16 * YEAR_MS, HISTORY_START - 25 * YEAR_MS);
  const latest = horizon - DAY_MS;
  const within = (from, to) => from + rnd.next() * Math.max(0, to - from);
  const conditions = [];
  for (const key of SHIFT.comorbidities) {
    if (disease.has[key] || !extra.has[key]) continue;
    const onsetMs = earliest >= HISTORY_START - 30 * DAY_MS || rnd.chance(0.12)
      ? within(Math.max(earliest, HISTORY_START), latest)
      : within(earliest, HISTORY_START - 30 * DAY_MS);
    const site = extra.cancerSite === 'prostate' && demo.synthea ? 'prostateSynthea' : extra.cancerSite;
    const v = key === 'ckd' ? rnd.weighted(CONDITION_CODES.ckd[extra.ckdStage])
      : key === 'cancer' ? CONDITION_CODES.cancer[site]
        : rnd.weighted(CONDITION_CODES[key]);
    const rec = { key, variant: v, onsetMs, chronic: true, clinical: 'active', verification: 'confirmed' };
    conditions.push(conditionResource(ctx, rec, stats));
    stats.conditionsAddedByShift++;
  }
  return conditions;
}

// Every SpO2 value lower, as another pulse oximeter reads.
function lowerSpo2(observations) {
  const codes = [VITALS.spo2.code, ...VITALS.spo2.extraCodings.map((c) => c.code)];
  const [lo, hi] = SHIFT.spo2Range;
  const lower = (v) => Math.min(hi, Math.max(lo, v - SHIFT.spo2Points));
  for (const o of observations) {
    const q = o.valueQuantity;
    if (!q || typeof q.value !== 'number' || !hasLoinc(o.code, codes)) continue;
    // vitalSet's tenfold wrong value of an entered-in-error record: the tenfold of the new reading.
    q.value = q.value > 100 ? round(lower(q.value / 10) * 10, 1) : lower(q.value);
  }
}

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
  const stats = {
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
  const resources = [];
  const discharges = [];
  let mrnNumber = 10000000 + rnd.int(0, 999999);
  for (let i = 0; i < patients; i++) {
    mrnNumber += rnd.int(1, 97);
    const mrn = String(mrnNumber);
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
    resources.push(patientResource(shown, deathMs), ...encounters, ...observations, ...conditions);

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
  return { resources, stats, discharges };
}

// Deterministic UUID (v4 layout) from a PRNG.
function makeUuid(next) {
  const hex = [];
  for (let i = 0; i < 4; i++) {
    hex.push(((next() * 4294967296) >>> 0).toString(16).padStart(8, '0'));
  }
  const h = hex.join('');
  const variantNibble = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.substring(0, 8)}-${h.substring(8, 12)}-4${h.substring(13, 16)}-${variantNibble}${h.substring(17, 20)}-${h.substring(20, 32)}`;
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
