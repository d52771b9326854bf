'use strict';
// Conditions of the synthetic data (generate.js): which chronic diseases a patient has and since
// when, the Condition records that say so (statuses, duplicates, acute illnesses, decoys), and the
// Condition resources.

const {
  SNOMED, ICD10CM, CONDITION_CLINICAL, CONDITION_VER_STATUS, CONDITION_CATEGORY, US_CORE, CONDITION_CODES, COMORBIDITIES,
} = require('./generate-codes.js');
const { DAY_MS, YEAR_MS, HISTORY_START, HISTORY_END, logistic, isoSeconds, isoOffset, isoDate } = require('./generate-common.js');

// ---------------------------------------------------------------------------------------------
// Chronic disease

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
  const book = recordBook(rnd, demo, horizon);
  metabolicRecords(book, disease);
  otherChronicRecords(book, disease);
  if (!demo.synthea) duplicateRecords(book);
  acuteRecords(book, disease.has);
  decoyRecords(book, disease.has);

  book.records.sort((x, y) => x.onsetMs - y.onsetMs);
  return book.records;
}

// What diseaseRecords' records of one patient share: when their onsets may fall, how a status is
// drawn, and the records so far.
function recordBook(rnd, demo, horizon) {
  const { birthMs, synthea } = demo;

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
  return { rnd, synthea, earliest, latest, records, within, onset, later, verification, chronic, pickVariant };
}

// Hypertension, diabetes (and prediabetes), diabetes with complications, chronic kidney disease.
function metabolicRecords(book, disease) {
  const { rnd, earliest, records, onset, later, verification, chronic, pickVariant } = book;
  const { has, ckdStage } = disease;
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
}

// Heart failure, COPD, dementia, cancer (and metastasis), myocardial infarction, stroke.
function otherChronicRecords(book, disease) {
  const { rnd, synthea, latest, records, onset, later, verification, chronic, pickVariant } = book;
  const { has, cancerSite } = disease;
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
}

// A comorbidity on the problem list also recorded as an encounter diagnosis, coded the other
// way: active, or resolved after the encounter.
function duplicateRecords(book) {
  const { rnd, latest, records, within } = book;
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
function acuteRecords(book, has) {
  const { rnd, earliest, latest, records, within, pickVariant } = book;
  const acute = rnd.int(0, 2) + (has.copd && rnd.chance(0.5) ? 1 : 0);
  for (let i = 0; i < acute; i++) {
    const key = rnd.weighted(['bronchitis', 'sinusitis', 'pharyngitis'], (k) => (k === 'bronchitis' && has.copd ? 3 : 1));
    const at = within(Math.max(earliest, HISTORY_START - 2 * YEAR_MS), latest);
    const ends = at + rnd.int(7, 21) * DAY_MS;
    records.push({ key, variant: pickVariant(key), onsetMs: at, verification: 'confirmed',
      ...(ends < latest ? { clinical: 'resolved', abatementMs: ends } : { clinical: 'active' }) });
  }
}

// Decoys: a comorbidity ruled out (often still "active"), or entered in error (no clinicalStatus).
function decoyRecords(book, has) {
  const { rnd, latest, records, within, pickVariant } = book;
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

module.exports = { drawDisease, diseaseRecords, conditionResource };
