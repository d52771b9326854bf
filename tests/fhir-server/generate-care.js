'use strict';
// A patient's care in the synthetic data (generate.js): two years of encounters (check-ups,
// emergency visits, inpatient stays, follow-ups), the Observations taken at them, and the outcome
// drawn at each discharge.

const { SNOMED, VITALS, CONDITION_CODES } = require('./generate-codes.js');
const {
  REFERENCE_DATE, DAY_MS, YEAR_MS, HISTORY_START, HISTORY_END, READMISSION_DAYS, round, isoSeconds, quantity,
} = require('./generate-common.js');
const { smokingAt } = require('./generate-patients.js');
const {
  drawVitals, dischargeVitals, vitalSet, otherObservation, answer, smokingObservation, surveyObservations,
} = require('./generate-observations.js');
const { ENCOUNTER_TYPE, encounterResource } = require('./generate-encounters.js');
const { readmissionLogit, readmissionProbability, riskFactorsAt } = require('./generate-outcome.js');

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
  const care = careOf(ctx, info, stats);
  const { events, stays, background } = inpatientStays(care, backgroundEvents(care));
  recordDischarges(care, stays, discharges);

  const all = [...events, ...background];
  const ambulatory = all.filter((e) => e.cls === 'AMB').sort((x, y) => x.startMs - y.startMs);
  const extraObservations = visitObservations(care, ambulatory);

  const encounters = all.map((e) => ({ startMs: e.startMs, endMs: e.endMs, resource: e.encounter }));
  stats.encountersEmergency += all.filter((e) => e.cls === 'EMER').length;
  cancelledEncounters(care, encounters);
  decadesLongEncounter(care, encounters);
  afterDeath(care, encounters, extraObservations);
  encounters.sort((a, b) => a.startMs - b.startMs);

  stats.inpatientStays += stays.length;
  stats.encountersInpatient += encounters.filter((e) => e.resource.class.code === 'IMP').length;
  const observations = [...all.flatMap((e) => e.observations), ...extraObservations]
    .map((o) => ({ ms: Date.parse(o.effectiveDateTime), o }))
    .sort((a, b) => a.ms - b.ms)
    .map((x) => x.o);
  return { encounters: encounters.map((e) => e.resource), observations };
}

// What the parts of a patient's care share: when the history ends for the patient, their weight,
// the states their vital signs are drawn from, and how an event becomes resources.
function careOf(ctx, info, stats) {
  const { rnd, profile } = ctx;
  const { sick, demo, deathMs } = info;
  const birthYear = new Date(demo.birthMs).getUTCFullYear();
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
  return { ctx, info, stats, rnd, birthYear, horizon, weightAt, clinicState, acuteState, materialize };
}

// Check-ups (office hours) and emergency visits, each with vital signs, that end before the horizon.
function backgroundEvents(care) {
  const { rnd, info, horizon, weightAt, clinicState, acuteState, materialize } = care;
  const { sick, severity, smoking } = info;
  const { age } = info.demo;
  const background = [];
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
  return background.filter((e) => e.endMs < horizon).map(materialize);
}

// Inpatient stays in order, each with the emergency visit before it (if any), its outcome and its
// follow-up visit (if any); the background events a stay overlaps are dropped.
function inpatientStays(care, background) {
  const { rnd, info, stats, horizon, materialize } = care;
  const { sick, severity } = info;
  const { age } = info.demo;
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

    const { stay, viaEmergency } = admit(care, events, startMs, endMs, emergent);
    stays.push(stay);
    readmission = drawOutcome(care, stay, viaEmergency, [...events, ...background]);

    if (rnd.chance(0.5)) followUp = followUpVisit(care, endMs);
    if (readmission) {
      // Readmissions come early more often than late.
      const u = rnd.next();
      t = endMs + (1 + Math.floor(28 * u * u)) * DAY_MS + rnd.int(0, 23) * 3600e3;
    } else {
      t = endMs + READMISSION_DAYS * DAY_MS + exponentialMs(rnd, admissionsPerDay);
    }
  }
  addFollowUp(horizon);
  return { events, stays, background };
}

// A stay: emergent (shown by an emergency visit before it, priority EM and/or admitSource emd) or
// elective, with vital signs on admission and before discharge. Its events go to `events`.
function admit(care, events, startMs, endMs, emergent) {
  const { rnd, info, weightAt, acuteState, materialize } = care;
  const { sick } = info;
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
  return { stay, viaEmergency };
}

// The outcome, from what the resources hold at the discharge: whether another stay follows within
// 30 days.
function drawOutcome(care, stay, viaEmergency, pool) {
  const { rnd, info, stats, birthYear } = care;
  const { frailty, conditions } = info;
  const factors = riskFactorsAt(stay.encounter, pool.map((e) => e.encounter), pool.flatMap((e) => e.observations),
    conditions, birthYear);
  const probability = readmissionProbability(factors, frailty);
  const readmission = rnd.chance(probability);
  stay.factors = factors;
  stay.probability = probability;
  stats.emergentStays += factors.emergent ? 1 : 0;
  stats.staysAfterEmergencyVisit += viaEmergency ? 1 : 0;
  stats.staysPriorityEmergency += stay.extra.priority === 'EM' ? 1 : 0;
  stats.staysAdmittedFromEmergency += stay.extra.admitSource ? 1 : 0;
  stats.staysElective += stay.extra.priority === 'EL' ? 1 : 0;
  return readmission;
}

// The follow-up visit 5 to 14 days after a discharge.
function followUpVisit(care, endMs) {
  const { rnd, weightAt, clinicState } = care;
  const day = Math.floor((endMs + rnd.int(5, 14) * DAY_MS) / DAY_MS) * DAY_MS;
  const fuStart = day + rnd.int(32, 68) * 900e3;
  const at = fuStart + rnd.int(0, 2) * 900e3;
  return { kind: 'followUp', cls: 'AMB', startMs: fuStart, endMs: fuStart + rnd.int(2, 6) * 900e3,
    sets: [{ ms: at, values: drawVitals(rnd, clinicState), kg: rnd.chance(0.5) ? weightAt(at) : undefined, setting: 'clinic' }] };
}

// One entry per discharge (generateWithStats' `discharges`).
function recordDischarges(care, stays, discharges) {
  const { info, stats, horizon } = care;
  const { sick, demo, deathMs } = info;
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
}

// The Observations of clinic visits that are not vital signs: smoking status, survey answers,
// ejection fraction.
function visitObservations(care, ambulatory) {
  const { ctx, rnd, info, stats } = care;
  const { sick, smoking, disease } = info;
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
  return extraObservations;
}

// About 3% of encounters are followed by a cancelled one within 30 days.
function cancelledEncounters(care, encounters) {
  const { ctx, rnd, stats } = care;
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
}

// An ambulatory encounter that lasts decades (as a few of Synthea's do).
function decadesLongEncounter(care, encounters) {
  const { ctx, rnd, stats, horizon } = care;
  const { age, birthMs } = care.info.demo;
  if (age >= 45 && rnd.chance(0.008)) {
    const endMs = HISTORY_START + rnd.int(30, 700) * DAY_MS + rnd.int(32, 68) * 900e3;
    const startMs = endMs - rnd.int(4000, 15000) * DAY_MS;
    if (endMs < horizon && startMs > birthMs + 18 * YEAR_MS) {
      encounters.push({ startMs, endMs, resource: encounterResource(ctx, 'AMB', startMs, endMs, 'finished', { type: ENCOUNTER_TYPE.symptom }) });
      stats.encountersDecadesLong++;
    }
  }
}

// After death: the cause of death a few days later, and now and then a whole visit.
function afterDeath(care, encounters, extraObservations) {
  const { ctx, rnd, info, stats, clinicState, weightAt, materialize } = care;
  const { deathMs, disease } = info;
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
}

module.exports = { makeCare };
