'use strict';
// Code systems and codes of the synthetic data (generate.js): the FHIR and terminology systems,
// the LOINC codes of the Observations, and the SNOMED CT and ICD-10-CM codes of the Conditions.

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

// Whether `concept` has a LOINC coding with one of `codes`.
const hasLoinc = (concept, codes) => (concept?.coding ?? []).some((c) => c.system === LOINC && codes.includes(c.code));

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

module.exports = {
  MRN_SYSTEM,
  LOINC,
  UCUM,
  OBS_CATEGORY,
  ACT_CODE,
  ACT_PRIORITY,
  ADMIT_SOURCE,
  PARTICIPATION_TYPE,
  DATA_ABSENT,
  SNOMED,
  ICD10CM,
  CONDITION_CLINICAL,
  CONDITION_VER_STATUS,
  CONDITION_CATEGORY,
  VITAL_PROFILE,
  US_CORE,
  SYNTHEA_SYSTEM,
  MAIDEN_NAME_URL,
  VITALS,
  SMOKING_STATUS,
  SMOKING_ANSWERS,
  CURRENT_SMOKER_CODES,
  PHQ_ANSWERS,
  HOUSING,
  HOUSING_ANSWERS,
  codeOf,
  categoryOf,
  hasLoinc,
  CONDITION_CODES,
  COMORBIDITIES,
  CATEGORY_OF,
};
