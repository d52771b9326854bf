'use strict';
// Encounters of the synthetic data (generate.js): the Encounter resource of a stay or visit, as
// the patient's records write it.

const { SNOMED, ACT_CODE, ACT_PRIORITY, ADMIT_SOURCE, PARTICIPATION_TYPE, US_CORE, SYNTHEA_SYSTEM } = require('./generate-codes.js');
const { isoSeconds, isoOffset, makeUuid } = require('./generate-common.js');
const { practitionerName } = require('./generate-patients.js');

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

module.exports = { ENCOUNTER_TYPE, encounterResource };
