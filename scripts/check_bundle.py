#!/usr/bin/env python3
"""Checks that a recserve bundle is readable by the tools its users already have (numpy, lightgbm).

usage: check_bundle.py BUNDLE_DIR [ROWS.npy PREDS.npy]
Loads every .npy file and checks its shape against manifest.json; loads ranker.txt with
lightgbm.Booster and checks its feature names; with ROWS/PREDS, checks that LightGBM's predictions
on the feature rows equal recserve's (relative 1e-6). Exits non-zero with a message on failure.
"""
import json
import os
import sys

import lightgbm
import numpy as np


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def main():
    bundle = sys.argv[1]
    m = json.load(open(os.path.join(bundle, "manifest.json")))
    n_items, n_users = m["data"]["items"], m["data"]["users"]
    expect = {
        "item_cf.npy": ((n_items, m["cf_dim"]), np.float32),
        "item_bias.npy": ((n_items,), np.float32),
        "user_cf.npy": ((n_users, m["cf_dim"]), np.float32),
        "item_content.npy": ((n_items, m["content_dim"]), np.float32),
        "item_stats.npy": ((n_items, 4), np.float32),
        "user_history_indptr.npy": ((n_users + 1,), np.int64),
        "item_categories_indptr.npy": ((n_items + 1,), np.int64),
    }
    for name, (shape, dtype) in expect.items():
        a = np.load(os.path.join(bundle, name))
        if a.shape != shape or a.dtype != dtype:
            fail(f"{name}: shape {a.shape} dtype {a.dtype}, expected {shape} {dtype}")
        if a.dtype.kind == "f" and name != "item_stats.npy" and not np.isfinite(a).all():
            fail(f"{name}: non-finite values")
    i2i = os.path.join(bundle, "item2item_ids.npy")
    if os.path.exists(i2i):
        ids = np.load(i2i)
        w = np.load(os.path.join(bundle, "item2item_weights.npy"))
        if ids.dtype != np.int32 or w.dtype != np.float32 or ids.ndim != 2 or ids.shape[0] != n_items or w.shape != ids.shape:
            fail(f"item2item: ids {ids.shape} {ids.dtype}, weights {w.shape} {w.dtype}, expected [{n_items}, K] int32/float32")
        if ids.size and (ids.min() < -1 or ids.max() >= n_items):
            fail("item2item_ids.npy: ids out of range")
        if not np.isfinite(w).all() or (w[ids < 0] != 0).any():
            fail("item2item_weights.npy: non-finite weights or weight on padding")
        if (ids == np.arange(n_items)[:, None]).any():
            fail("item2item_ids.npy: an item is its own neighbour")
        expect["item2item_ids.npy"] = (ids.shape, np.int32)
    hist = np.load(os.path.join(bundle, "user_history_items.npy"))
    if hist.size and (hist.min() < 0 or hist.max() >= n_items):
        fail("user_history_items.npy: ids out of range")
    booster = lightgbm.Booster(model_file=os.path.join(bundle, "ranker.txt"))
    if booster.feature_name() != m["feature_names"]:
        fail(f"ranker feature names {booster.feature_name()} != manifest {m['feature_names']}")
    checked = 0
    if len(sys.argv) == 4:
        rows = np.load(sys.argv[2]).astype(np.float64)
        preds = np.load(sys.argv[3])
        got = booster.predict(rows, raw_score=True)
        err = np.abs(got - preds) / np.maximum(1.0, np.abs(preds))
        if err.max() > 1e-6:
            i = int(err.argmax())
            fail(f"prediction mismatch at row {i}: lightgbm {got[i]!r} vs recserve {preds[i]!r}")
        checked = len(rows)
    print(f"OK: {len(expect)} arrays, ranker with {booster.num_trees()} trees, {checked} predictions match")


if __name__ == "__main__":
    main()
