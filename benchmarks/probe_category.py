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
generator renders a kind of sound it is told, is ``eval_demo.py generate --reference category``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def pooled_features(store: str, split: str) -> tuple[np.ndarray, list[str]]:
    """Per clip: mean embedding, mean and max object scores (``foleykit.vision.encoder.group_slices``), and
    the clip categories."""
    from foleykit.data.cache import ArrayDataset
    from foleykit.vision.encoder import group_slices

    cols = group_slices()
    width = max(s.stop for s in cols.values())
    ds = ArrayDataset(store, split, fields=["video_features"])
    feats = ds.arrays()["video_features"]
    if feats.shape[-1] != width:
        raise SystemExit(
            f"{store}: video_features have {feats.shape[-1]} channels, the scene encoder {width}"
        )
    rows = []
    for i in range(len(ds)):
        x = np.asarray(feats[i], np.float32)
        emb, obj = x[:, cols["embedding"]], x[:, cols["objects"]]
        rows.append(np.concatenate([emb.mean(0), obj.mean(0), obj.max(0)]))
    return np.stack(rows), [ds.info(i)["category"] for i in range(len(ds))]


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--train", default="train")
    ap.add_argument("--test", default="test")
    ap.add_argument("--c", type=float, default=0.1, help="inverse L2 strength of the logistic regression")
    args = ap.parse_args()
    x_tr, y_tr = pooled_features(args.store, args.train)
    x_te, y_te = pooled_features(args.store, args.test)
    scaler = StandardScaler().fit(x_tr)
    clf = LogisticRegression(C=args.c, max_iter=2000).fit(scaler.transform(x_tr), y_tr)
    proba = clf.predict_proba(scaler.transform(x_te))
    classes = list(clf.classes_)
    allowed = np.array([c in set(y_te) for c in classes])
    pred = [classes[j] for j in np.argmax(np.where(allowed, proba, -1.0), axis=1)]
    acc = float(np.mean([p == t for p, t in zip(pred, y_te, strict=True)]))
    fam = float(np.mean([p.split("/")[0] == t.split("/")[0] for p, t in zip(pred, y_te, strict=True)]))
    majority = max(set(y_te), key=y_te.count)
    print(
        json.dumps(
            {
                "train_clips": len(y_tr),
                "test_clips": len(y_te),
                "categories_trained": len(classes),
                "categories_tested": int(allowed.sum()),
                "category_acc": acc,
                "family_acc": fam,
                "majority_category_acc": y_te.count(majority) / len(y_te),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
