#!/usr/bin/env python3
"""Writes charlson-lace.toml from charlson.toml: the same categories and codes, with the weights
of the Charlson index as the LACE index scores it (van Walraven C et al., CMAJ 2010, table of
the index's comorbidity points; models/lace/README.md):

  previous myocardial infarction, cerebrovascular disease, peripheral vascular disease,
  diabetes without complications: 1; congestive heart failure, diabetes with end-organ damage,
  chronic pulmonary disease, mild liver or renal disease, any tumour (including lymphoma or
  leukaemia): 2; dementia, connective tissue disease: 3; AIDS, moderate or severe liver or renal
  disease: 4; metastatic solid tumour: 6.

Peptic ulcer disease and hemiplegia/paraplegia score nothing there and are left out. Quan's
renal category (N18 of every stage, dialysis, transplant) does not tell mild from severe: it
scores 2, as mild renal disease; the README says so.

  /usr/bin/python3 models/value-sets/make_charlson_lace.py   (rewrites charlson-lace.toml)
"""
import pathlib
import re

HERE = pathlib.Path(__file__).resolve().parent
WEIGHTS = {
    "myocardial_infarction": 1, "cerebrovascular_disease": 1, "peripheral_vascular_disease": 1,
    "diabetes_without_chronic_complication": 1, "congestive_heart_failure": 2,
    "diabetes_with_chronic_complication": 2, "chronic_pulmonary_disease": 2,
    "mild_liver_disease": 2, "renal_disease": 2, "any_malignancy": 2, "dementia": 3,
    "rheumatic_disease": 3, "aids_hiv": 4, "moderate_severe_liver_disease": 4,
    "metastatic_solid_tumour": 6,
}
LEFT_OUT = {"peptic_ulcer_disease", "hemiplegia_paraplegia"}

text = (HERE / "charlson.toml").read_text()
head, *blocks = re.split(r"(?m)^\[\[category\]\]\n", text)
head_lines = [l for l in head.splitlines() if not l.startswith("#")]
out = ["# The Charlson comorbidity index as the LACE index scores it: the categories and codes of",
       "# charlson.toml (Quan et al., Med Care 2005, and the SNOMED CT codes there), with LACE's",
       "# weights (van Walraven et al., CMAJ 2010). Written by make_charlson_lace.py; edit that.",
       *[l.replace('"charlson"', '"charlson-lace"').replace(
           "Charlson comorbidity index", "Charlson comorbidity index (LACE weights)")
         for l in head_lines if l.strip()], ""]
seen = set()
for b in blocks:
    name = re.search(r'(?m)^name = "([a-z_]+)"', b).group(1)
    seen.add(name)
    if name in LEFT_OUT:
        continue
    b = re.sub(r"(?m)^weight = \d+", f"weight = {WEIGHTS[name]}", b)
    out.append("[[category]]\n" + b.rstrip("\n") + "\n")
assert seen == set(WEIGHTS) | LEFT_OUT, seen ^ (set(WEIGHTS) | LEFT_OUT)
(HERE / "charlson-lace.toml").write_text("\n".join(out).rstrip("\n") + "\n")
