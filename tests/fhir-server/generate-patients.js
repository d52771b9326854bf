'use strict';
// Patients of the synthetic data (generate.js): names and addresses, demographics, the Patient
// resource, and smoking history.

const { MRN_SYSTEM, US_CORE, MAIDEN_NAME_URL } = require('./generate-codes.js');
const { REFERENCE_DATE, DAY_MS, HISTORY_START, isoSeconds, isoOffset, isoDate } = require('./generate-common.js');

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

// ---------------------------------------------------------------------------------------------
// Smoking

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

module.exports = { practitionerName, makePatient, patientResource, drawSmoking, smokingAt };
