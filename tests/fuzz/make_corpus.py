#!/usr/bin/python3
"""Writes the seed corpus of the model-loader fuzzer: small XGBoost models, JSON and UBJSON.

    /usr/bin/python3 tests/fuzz/make_corpus.py tests/fuzz/corpus/model_load
"""
import os
import sys

import numpy as np
import xgboost as xgb

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(5)
X = rng.normal(0, 1, (300, 4)).astype(np.float32)
X[rng.random(X.shape) < 0.1] = np.nan
y2 = (np.nan_to_num(X[:, 0]) > 0).astype(np.float32)
y3 = (np.nan_to_num(X[:, 1]) > 0).astype(np.float32) + (np.nan_to_num(X[:, 2]) > 0.5)
cases = {
    "binary": ({"objective": "binary:logistic", "max_depth": 3}, y2, 3, None),
    "regression": ({"objective": "reg:squarederror", "max_depth": 2}, np.nan_to_num(X[:, 3]), 2, None),
    "softprob": ({"objective": "multi:softprob", "num_class": 3, "max_depth": 2}, y3, 2, None),
    "forest": ({"objective": "binary:logistic", "max_depth": 2, "num_parallel_tree": 2}, y2, 1, None),
}
for name, (params, y, rounds, _) in cases.items():
    booster = xgb.train({**params, "nthread": 1, "seed": 1}, xgb.DMatrix(X, label=y, missing=np.nan), rounds)
    for ext in ("json", "ubj"):
        booster.save_model(os.path.join(out, f"{name}.{ext}"))
Xc = X.copy()
Xc[:, 0] = rng.integers(0, 6, 300)
dc = xgb.DMatrix(Xc, label=y2, missing=np.nan, enable_categorical=True, feature_types=["c", "q", "q", "q"])
booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "tree_method": "hist", "max_cat_to_onehot": 1,
                     "nthread": 1}, dc, 3)
for ext in ("json", "ubj"):
    booster.save_model(os.path.join(out, f"categorical.{ext}"))
print(f"corpus in {out}")
