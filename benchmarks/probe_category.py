"""Can the picture tell WHAT sounds? A linear probe on the scene encoder's time-pooled object features.

The no-prompt category accuracy of the demonstrator (``eval_demo.py score``) mixes two things: whether the
frozen vision models see what kind of thing is in the picture, and whether the generator renders that kind of
sound. This probe measures the first alone: a logistic regression from each clip's pooled detector features
(the MobileNetV2 embedding averaged over time, the SSD class scores averaged and max-pooled over time) to its
sound category, fitted on the store's training clips and scored on another split with the protocol of
``eval_demo.category_accuracy`` (the prediction is restricted to the categories that split has; ``family``
compares the part before the ``/``).

    python benchmarks/probe_category.py --store STORE_POSE [--train train] [--test test] [--c 0.1]

STORE_POSE: a store prepared with ``foleykit train prepare`` for the ``foleykit_demo`` recipe (its
``video_features`` are the scene encoder's 332 channels). The second half of the question, whether the
generator renders a kind of sound it is told, is ``eval_demo.py generate --reference category``. Both halves
together, at best: ``eval_demo.py ceiling --category-from probe --probe-store STORE_POSE`` scores real bank
recordings of the category this probe names, on each clip's true timing.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def pool_clip(x: np.ndarray) -> np.ndarray:
    """One clip's scene features ``(T, 332)`` -> the probe's input: the embedding averaged over time, the
    object scores averaged and max-pooled over time (``foleykit.vision.scene.group_slices``)."""
    from foleykit.vision.scene import group_slices

    cols = group_slices()
    width = max(s.stop for s in cols.values())
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[-1] != width:
        raise SystemExit(f"video features of shape {x.shape}: the scene encoder gives (T, {width})")
    emb, obj = x[:, cols["embedding"]], x[:, cols["objects"]]
    return np.concatenate([emb.mean(0), obj.mean(0), obj.max(0)])


def pooled_features(store: str, split: str) -> tuple[np.ndarray, list[str]]:
    """Per clip of a store split: :func:`pool_clip` of its stored features, and the clip categories."""
    from foleykit.data.cache import ArrayDataset

    ds = ArrayDataset(store, split, fields=["video_features"])
    feats = ds.arrays()["video_features"]
    rows = [pool_clip(feats[i]) for i in range(len(ds))]
    return np.stack(rows), [ds.info(i)["category"] for i in range(len(ds))]


def fit_probe(x: np.ndarray, y: list[str], c: float = 0.1):
    """The probe: standardised features, L2 logistic regression (inverse strength ``c``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(x, y)


def predict_categories(probe, x: np.ndarray, allowed: set[str]) -> list[str]:
    """The most probable category of each row among ``allowed`` (the categories the scored split has), as
    ``eval_demo.category_accuracy`` restricts its own predictions."""
    classes = list(probe.classes_)
    ok = np.array([c in allowed for c in classes])
    if not ok.any():
        raise SystemExit(f"the probe knows none of the categories {sorted(allowed)}")
    proba = probe.predict_proba(x)
    return [str(classes[j]) for j in np.argmax(np.where(ok, proba, -1.0), axis=1)]


def hit_rates(pred: list[str], truth: list[str]) -> dict[str, float]:
    """Share of right categories and of right families (the part before ``/``), as ``category_accuracy``
    counts them."""
    pairs = list(zip(pred, truth, strict=True))
    return {
        "category_acc": float(np.mean([p == t for p, t in pairs])),
        "family_acc": float(np.mean([p.split("/")[0] == t.split("/")[0] for p, t in pairs])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--train", default="train")
    ap.add_argument("--test", default="test")
    ap.add_argument("--c", type=float, default=0.1, help="inverse L2 strength of the logistic regression")
    args = ap.parse_args()
    x_tr, y_tr = pooled_features(args.store, args.train)
    x_te, y_te = pooled_features(args.store, args.test)
    probe = fit_probe(x_tr, y_tr, args.c)
    pred = predict_categories(probe, x_te, set(y_te))
    majority = max(set(y_te), key=y_te.count)
    print(
        json.dumps(
            {
                "train_clips": len(y_tr),
                "test_clips": len(y_te),
                "categories_trained": len(probe.classes_),
                "categories_tested": len({c for c in probe.classes_ if c in set(y_te)}),
                **hit_rates(pred, y_te),
                "majority_category_acc": y_te.count(majority) / len(y_te),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
