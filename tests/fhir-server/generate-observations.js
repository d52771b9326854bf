'use strict';
// Observations of the synthetic data (generate.js): vital signs as the patient's state has them
// (on admission, before discharge, at a visit) and as the patient's records write them, and the
// other Observations (smoking status, survey answers, cause of death).

const {
  LOINC, SNOMED, UCUM, DATA_ABSENT, VITAL_PROFILE, US_CORE, VITALS, SMOKING_STATUS, SMOKING_ANSWERS, PHQ_ANSWERS, HOUSING,
  HOUSING_ANSWERS, codeOf, categoryOf,
} = require('./generate-codes.js');
const { round, isoSeconds, isoOffset, quantity } = require('./generate-common.js');

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

// Unstable at discharge: [mean, sd, min, max], already on the abnormal side of ABNORMAL
// (generate-outcome.js).
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
  const { rnd, synthea, subjectRef } = ctx;
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

  point.push(temperature(ctx, make, values, stats));
  if (kg !== undefined) point.push(...bodySize(ctx, make, kg));
  point.push(bloodPressure(ctx, make, values, stats));
  untidy(rnd, point, stats);
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

// The temperature of a set: oral now and then (Synthea's patients half the time), in °F for the
// patients whose records use it.
function temperature(ctx, make, values, stats) {
  const { rnd, synthea, profile } = ctx;
  const { usesFahrenheit } = profile;
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
  return temp;
}

// Weight and BMI, in pounds for the patients whose records use them.
function bodySize(ctx, make, kg) {
  const { synthea, profile } = ctx;
  const { usesPounds, heightM } = profile;
  const weight = make(VITALS.weight);
  weight.valueQuantity = usesPounds
    ? quantity(round(kg * 2.20462, 1), 'lb', '[lb_av]')
    : quantity(synthea ? kg : round(kg, 1), 'kg', 'kg');

  const bmi = make(VITALS.bmi);
  bmi.valueQuantity = quantity(synthea ? kg / (heightM * heightM) : round(kg / (heightM * heightM), 1), 'kg/m2', 'kg/m2');
  return [weight, bmi];
}

// The blood-pressure panel: Synthea's 55284-4 (diastolic first), or 85354-9.
function bloodPressure(ctx, make, values, stats) {
  const { rnd, synthea } = ctx;
  if (rnd.chance(synthea ? 0.9 : 0.03)) {
    const bp = make(VITALS.bloodPressureSynthea, false);
    const bare = rnd.chance(0.03); // value and system only, as in 45 of Synthea's panels
    const q = (v) => (bare ? { value: v, system: UCUM } : quantity(v, 'mm[Hg]', 'mm[Hg]'));
    bp.component = [
      { code: codeOf(VITALS.diastolicSynthea), valueQuantity: q(values.dia) },
      { code: codeOf(VITALS.systolicSynthea), valueQuantity: q(values.sys) },
    ];
    stats.bloodPressurePanels55284++;
    stats.bloodPressurePanelsWithoutUnit += bare ? 1 : 0;
    return bp;
  }
  const bp = make(VITALS.bloodPressure);
  bp.component = [
    { code: codeOf(VITALS.systolic), valueQuantity: quantity(values.sys, 'mmHg', 'mm[Hg]') },
    { code: codeOf(VITALS.diastolic), valueQuantity: quantity(values.dia, 'mmHg', 'mm[Hg]') },
  ];
  return bp;
}

// Untidy records, a few percent each.
function untidy(rnd, point, stats) {
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

module.exports = { drawVitals, dischargeVitals, vitalSet, otherObservation, answer, smokingObservation, surveyObservations };
