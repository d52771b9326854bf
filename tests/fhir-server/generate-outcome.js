'use strict';
// The outcome of the synthetic data (generate.js): another inpatient stay within 30 days of a
// discharge, drawn from a logistic model of what the generated resources hold as of the discharge.

const { UCUM, COMORBIDITIES, CATEGORY_OF, hasLoinc } = require('./generate-codes.js');
const { DAY_MS, logistic } = require('./generate-common.js');

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

// What the outcome counts as abnormal at discharge, on the values as recorded.
const ABNORMAL = {
  tachycardia: (v) => v.hr !== undefined && v.hr > 100,
  hypoxaemia: (v) => v.spo2 !== undefined && v.spo2 < 92,
  temperature: (v) => v.tempC !== undefined && (v.tempC >= 38.0 || v.tempC < 36.0),
  hypotension: (v) => v.sys !== undefined && v.sys < 100,
  tachypnoea: (v) => v.rr !== undefined && v.rr > 22,
};

const COUNTING_OBSERVATION = new Set(['final', 'amended', 'corrected', 'preliminary']);
const NOT_COUNTING_ENCOUNTER = new Set(['cancelled', 'entered-in-error']);
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

module.exports = { READMISSION_MODEL, readmissionLogit, readmissionProbability, comorbiditiesAt, riskFactorsAt };
