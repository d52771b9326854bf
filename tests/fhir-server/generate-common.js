'use strict';
// What the modules of the synthetic-patient generator (generate.js) share: the reference date and
// the two years of history before it, the seeded random generator, rounding, FHIR instants and
// quantities.

const { MRN_SYSTEM, UCUM } = require('./generate-codes.js');

const REFERENCE_DATE = Date.parse('2026-11-01T00:00:00Z');
const DAY_MS = 24 * 3600 * 1000;
const YEAR_MS = 365.25 * DAY_MS;

// Two years of care before the reference date: inpatient stays (some of them readmissions),
// emergency visits and clinic visits, each with the vital signs taken at it, so that a feature
// vector as of any discharge sees the vital signs of that stay.
const HISTORY_START = REFERENCE_DATE - 729 * DAY_MS;
const HISTORY_END = REFERENCE_DATE - 2 * DAY_MS; // every stay and visit ends before this
const READMISSION_DAYS = 30;

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

module.exports = {
  REFERENCE_DATE,
  DAY_MS,
  YEAR_MS,
  HISTORY_START,
  HISTORY_END,
  READMISSION_DAYS,
  mulberry32,
  makeRandom,
  round,
  logistic,
  isoSeconds,
  isoOffset,
  isoDate,
  patientReference,
  quantity,
  makeUuid,
};
