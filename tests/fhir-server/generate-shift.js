'use strict';
// The shifted population of the synthetic data (generate.js, `shift`), for testing drift
// monitoring: older, sicker, and measured by another pulse oximeter.

const { VITALS, CONDITION_CODES, hasLoinc } = require('./generate-codes.js');
const { DAY_MS, YEAR_MS, HISTORY_START, round } = require('./generate-common.js');
const { drawDisease, conditionResource } = require('./generate-conditions.js');

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

module.exports = { SHIFT, olderDemo, shiftedConditions, lowerSpo2 };
