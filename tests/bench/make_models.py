#!/usr/bin/python3
"""Makes the benchmark's models and rows with Debian's XGBoost, deterministically.

    /usr/bin/python3 tests/bench/make_models.py OUT_DIR

Writes model200.{json,ubj} (200 trees, depth 6), model1000.{json,ubj} (1000 trees, depth 8),
both binary:logistic on 20 features, and rows.f32: 100,000 rows x 20 float32, ~10% NaN.
"""
import os
import sys

import numpy as np
import xgboost as xgb

FEATURES = 20


def data(rng, n):
    X = rng.normal(0, 1, (n, FEATURES)).astype(np.float32)
    z = X[:, 0] + 0.5 * X[:, 1] * X[:, 2] - 0.3 * X[:, 3] ** 2 + 0.2 * np.sin(3 * X[:, 4]) + rng.normal(0, 1, n)
    X[rng.random(X.shape) < 0.1] = np.nan
    return X, (z > 0).astype(np.float32)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(11)
    X, y = data(rng, 50000)
    dtrain = xgb.DMatrix(X, label=y, missing=np.nan)
    for trees, depth in ((200, 6), (1000, 8)):
        path = os.path.join(out, f"model{trees}")
        if os.path.exists(path + ".ubj"):
            continue
        booster = xgb.train({"objective": "binary:logistic", "max_depth": depth, "eta": 0.05, "tree_method": "hist",
                             "min_child_weight": 0.1, "lambda": 0.1, "seed": 1, "nthread": 2},
                            dtrain, num_boost_round=trees)
        booster.save_model(path + ".json")
        booster.save_model(path + ".ubj")
    rows, _ = data(np.random.default_rng(12), 100000)
    rows.astype("<f4").tofile(os.path.join(out, "rows.f32"))
    print(f"models and rows in {out}")


if __name__ == "__main__":
    main()
