"""Real photos for the photo-real synthetic generator: backgrounds, floor / fabric textures, cut-outs.

``foleykit data prepare-photos`` (``prepare_photos``) gathers pictures with known licences into one
folder (default ``$FOLEYKIT_HOME/photos``) and indexes them in ``photos.json``:

- **backgrounds** — photos of places and things (a curated list of Debian ``opencv-doc`` example photos,
  Apache-2.0 AND BSD-3-Clause by its copyright file; scikit-image's astronaut / camera / chelsea / coffee /
  rocket, CC0 or public domain; scikit-learn's china and flower, CC-BY-2.0);
- **textures** — floor and fabric close-ups with the footstep surface they show where one is known
  (scikit-image grass / gravel / brick, CC0; crops of opencv-doc photos: cobbles, a football pitch, a
  carpet, fabrics);
- **cut-outs** — Tux Paint stamps (Debian ``tuxpaint-stamps-default``, GPL-2) that are photos
  (``stamps.is_photo``), with alpha, what they show ("a dog"), their role in scenes (``animal``,
  ``drop``, ``strike``, ``object``, ``prop``) and, for stamps with their own recording, the bank path of
  that sound (``animal/mammal/dog.ogg``), so picture and sound of the same thing stay paired.

Nothing else in the package or the other sources is used: never ``vtest.avi`` (kept for evaluation) nor
``Megamind*.avi`` (a copyrighted trailer). ``split_photos`` divides the pictures into train / validation /
test by photo (near-duplicate groups such as stereo pairs move together); paired cut-outs follow their
sound's split, so test pictures and test sounds are never seen in training.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.errors import DataError

MANIFEST = "photos.json"
OPENCV_PACKAGE = "opencv-doc"
OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
OPENCV_COPYRIGHT = "usr/share/doc/opencv-doc/copyright"
KINDS = ("background", "texture", "cutout")
#: Longest side kept for backgrounds / textures / cut-outs (enough for 480p frames with zoom).
MAX_SIDE = {"background": 800, "texture": 512, "cutout": 320}

#: opencv-doc example photos used as backgrounds: file -> near-duplicate group (stereo pairs, edits).
OPENCV_BACKGROUNDS = {
    "aero1.jpg": "aero", "aero3.jpg": "aero", "aloeL.jpg": "aloe", "aloeR.jpg": "aloe",
    "apple.jpg": "apple", "baboon.jpg": "baboon", "basketball1.png": "basketball",
    "basketball2.png": "basketball", "board.jpg": "board", "box_in_scene.png": "box_in_scene",
    "building.jpg": "building", "butterfly.jpg": "butterfly", "chicky_512.png": "chicky",
    "ela_original.jpg": "ela", "ela_modified.jpg": "ela", "fruits.jpg": "fruits", "graf1.png": "graf",
    "graf3.png": "graf", "home.jpg": "home", "left.jpg": "left_right", "right.jpg": "left_right",
    "leuvenA.jpg": "leuven", "leuvenB.jpg": "leuven", "licenseplate_motion.jpg": "licenseplate",
    "messi5.jpg": "messi", "orange.jpg": "orange", "rubberwhale1.png": "rubberwhale",
    "rubberwhale2.png": "rubberwhale", "squirrel_cls.jpg": "squirrel", "stuff.jpg": "stuff",
}  # fmt: skip
#: Texture crops: (file, (x0, y0, x1, y1) fractions, surface or None for fabric).
OPENCV_TEXTURES = (
    ("leuvenA.jpg", (0.0, 0.74, 0.55, 1.0), "stone"),
    ("leuvenB.jpg", (0.0, 0.78, 0.5, 1.0), "stone"),
    ("messi5.jpg", (0.0, 0.82, 0.42, 1.0), "grass"),
    ("left.jpg", (0.62, 0.72, 1.0, 1.0), "carpet"),
    ("aloeL.jpg", (0.0, 0.0, 1.0, 0.3), None),
    ("rubberwhale1.png", (0.0, 0.5, 0.4, 0.95), None),
    ("rubberwhale1.png", (0.62, 0.0, 0.85, 0.7), None),
    ("baboon.jpg", (0.0, 0.55, 0.3, 1.0), None),
)
#: scikit-image data files: name -> (kind, surface, licence, credit).
SKIMAGE = {
    "astronaut.png": ("background", None, "public-domain", "NASA (Eileen Collins)"),
    "camera.png": ("background", None, "CC0-1.0", "Lav Varshney"),
    "chelsea.png": ("background", None, "CC0-1.0", "Stefan van der Walt"),
    "coffee.png": ("background", None, "CC0-1.0", "Rachel Michetti"),
    "rocket.jpg": ("background", None, "public-domain", "SpaceX"),
    "grass.png": ("texture", "grass", "CC0-1.0", "linolafett (DeviantArt)"),
    "gravel.png": ("texture", "gravel", "CC0-1.0", "CC0Textures Gravel04"),
    "brick.png": ("texture", "stone", "CC0-1.0", "CC0Textures Bricks25"),
}
SKLEARN = {
    "china.jpg": ("CC-BY-2.0", "danielbuechele (Flickr)"),
    "flower.jpg": ("CC-BY-2.0", "vultilion (Flickr)"),
}
#: Cut-out roles from the stamp path: drop objects by keyword -> (sound category, physics kind).
DROP_RULES = (
    (("basketball", "cricketball", "football", "soccer", "tennis_ball"), "impact/thud", "ball"),
    (("pitcher", "teapot", "lightbulb", "christmas_toy", "glass", "bottle", "mug"), "break/glass", "fragile"),
    (
        ("wrench", "plyers", "measuring_tape", "spade", "toolbox", "key", "cylinder", "trophy",
         "naval_shell", "garbagecan"),
        "impact/metal",
        "metal",
    ),
    (("food/", "mushrooms/", "pinecone", "rambutan", "pudding", "mince_pie", "roast_turkey", "easter_egg",
      "stocking", "clothespin", "bunny-egg", "grannysmith"), "impact/thud", "soft"),
)  # fmt: skip
STRIKE_TOOLS = ("household/tools/hammer", "household/tools/mallet_metal")


def cutout_role(rel: str) -> tuple[str, str | None, str | None]:
    """(role, drop sound category, physics kind) of a stamp path (``animals/mammals/dogs/dog``)."""
    low = rel.lower()
    if rel in STRIKE_TOOLS:
        return "strike", "impact/metal", "metal"
    if low.startswith("animals/"):
        return "animal", None, None
    for keys, category, kind in DROP_RULES:
        if any(k in low for k in keys):
            return "drop", category, kind
    return "prop", None, None


@dataclass(frozen=True)
class Photo:
    """One picture of the library (see the module docstring for the kinds and roles)."""

    id: str
    path: str
    kind: str
    group: str
    license: str
    source: str
    credit: str = ""
    surface: str | None = None
    noun: str | None = None
    role: str | None = None
    drop_category: str | None = None
    physics: str | None = None
    sound: str | None = None
    caption: str | None = None


class PhotoLibrary:
    """A prepared photo folder (``photos.json`` + pictures), with cached, resized loading.

    Raises:
        DataError: the folder or its manifest is missing (names the command that makes it).
    """

    def __init__(self, root: str | os.PathLike, *, cache_size: int = 64) -> None:
        self.root = Path(root).expanduser()
        manifest = self.root / MANIFEST
        if not manifest.is_file():
            raise DataError(
                f"photo library {self.root} not found (no {MANIFEST}); photo-real clips need it: run "
                "`foleykit data prepare-photos` (or pass --photos DIR), or use --style flat"
            )
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            self.photos = [Photo(**e) for e in data["photos"]]
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"{manifest} is not a valid photo manifest ({e}); re-run prepare-photos --force")
        self.meta = {k: v for k, v in data.items() if k != "photos"}
        self._by_id = {p.id: p for p in self.photos}
        self._cache: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def of_kind(self, kind: str) -> list[Photo]:
        return [p for p in self.photos if p.kind == kind]

    def get(self, photo_id: str) -> Photo:
        try:
            return self._by_id[photo_id]
        except KeyError:
            raise DataError(f"{photo_id!r} is not in photo library {self.root}") from None

    def image(self, photo: Photo | str, *, max_side: int | None = None) -> np.ndarray:
        """RGB (backgrounds, textures) or RGBA (cut-outs) ``uint8`` array, shrunk to ``max_side`` (cached)."""
        import cv2

        p = self.get(photo) if isinstance(photo, str) else photo
        key = (p.id, int(max_side or 0))
        img = self._cache.get(key)
        if img is None:
            raw = cv2.imread(str(self.root / p.path), cv2.IMREAD_UNCHANGED)
            if raw is None:
                raise DataError(f"cannot read {self.root / p.path}; re-run prepare-photos --force")
            img = _to_rgb(raw, alpha=p.kind == "cutout")
            if max_side and max(img.shape[:2]) > max_side:
                s = max_side / max(img.shape[:2])
                img = cv2.resize(
                    img,
                    (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))),
                    interpolation=cv2.INTER_AREA,
                )
            img.setflags(write=False)
            self._cache[key] = img
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return img

    def licenses(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.photos:
            out[p.license] = out.get(p.license, 0) + 1
        return dict(sorted(out.items()))


def _to_rgb(raw: np.ndarray, *, alpha: bool) -> np.ndarray:
    import cv2

    if raw.dtype != np.uint8:
        raw = (raw / max(1, raw.max()) * 255).astype(np.uint8)
    if raw.ndim == 2:
        raw = cv2.cvtColor(raw, cv2.COLOR_GRAY2BGR)
    if raw.shape[2] == 4:
        rgb = cv2.cvtColor(raw, cv2.COLOR_BGRA2RGBA)
        return rgb if alpha else np.ascontiguousarray(rgb[..., :3])
    rgb = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    if alpha:
        return np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return rgb


# --- splits ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhotoSplit:
    """Photo id -> split name; ``ids(split, kind, role)`` lists one split's pictures."""

    seed: int
    assignment: dict[str, str] = field(repr=False)
    library: PhotoLibrary = field(repr=False)

    def ids(self, split: str, kind: str, role: str | None = None) -> list[str]:
        return sorted(
            p.id
            for p in self.library.photos
            if p.kind == kind and (role is None or p.role == role) and self.assignment[p.id] == split
        )

    def split_of(self, photo_id: str) -> str:
        return self.assignment[photo_id]

    def totals(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for p in self.library.photos:
            row = out.setdefault(p.kind, {"train": 0, "validation": 0, "test": 0})
            row[self.assignment[p.id]] += 1
        return out


def split_photos(
    library: PhotoLibrary,
    *,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    bank_split: Any = None,
) -> PhotoSplit:
    """Assign every picture to train / validation / test, by group, within each (kind, role) stratum.

    A cut-out whose own sound is in ``bank_split`` (a ``BankSplit``) takes that sound's split, so a picture
    and its sound are always in the same split. Every other group is assigned like ``split_bank`` does
    for sound files (1 group -> train; 2 -> train + test; n >= 3 -> >= 1 each for validation and test),
    in an order shuffled by (seed, crc32 of the stratum). A group spanning several strata (a photo used as
    a background and cropped as a texture) gets the split of its first stratum (kinds in ``KINDS`` order).
    """
    from foleykit.data.bank import _split_sizes

    by_group: dict[str, str] = {}
    assignment: dict[str, str] = {}
    sound_split = getattr(bank_split, "assignment", {}) or {}
    for p in library.photos:
        if p.sound and p.sound in sound_split:
            by_group[p.group] = sound_split[p.sound]
    strata: dict[tuple[str, str], list[str]] = {}
    for p in library.photos:
        strata.setdefault((p.kind, p.role or ""), [])
        if p.group not in strata[(p.kind, p.role or "")]:
            strata[(p.kind, p.role or "")].append(p.group)
    for kind in KINDS:
        for (k, role), groups in sorted(strata.items()):
            if k != kind:
                continue
            free = sorted(g for g in groups if g not in by_group)
            rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(f"{kind}/{role}".encode())])
            order = [free[i] for i in rng.permutation(len(free))]
            n_train, n_val, _ = _split_sizes(len(order), fractions)
            for i, g in enumerate(order):
                by_group[g] = "train" if i < n_train else "validation" if i < n_train + n_val else "test"
    for p in library.photos:
        assignment[p.id] = by_group[p.group]
    return PhotoSplit(seed=seed, assignment=assignment, library=library)


# --- preparation -------------------------------------------------------------------------------------
def default_photos_dir() -> Path:
    from foleykit.paths import foleykit_home

    return foleykit_home() / "photos"


def is_prepared(out: Path) -> bool:
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        return all((out / p["path"]).is_file() for p in data["photos"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _save(img: np.ndarray, dest: Path, kind: str) -> None:
    """Shrink to MAX_SIDE[kind] and write (cut-outs: RGBA PNG trimmed to their alpha box; else JPEG 92)."""
    import cv2

    if kind == "cutout":
        ys, xs = np.nonzero(img[..., 3] > 8)
        if ys.size:
            img = img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    s = MAX_SIDE[kind] / max(img.shape[:2])
    if s < 1:
        img = cv2.resize(
            img,
            (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))),
            interpolation=cv2.INTER_AREA,
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    if kind == "cutout":
        ok = cv2.imwrite(str(dest), cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA))
    else:
        ok = cv2.imwrite(str(dest), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise DataError(f"could not write {dest}")


def _read(path: Path, *, alpha: bool = False) -> np.ndarray | None:
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return None if raw is None else _to_rgb(raw, alpha=alpha)


def _skimage_source(
    skimage_data: str | os.PathLike | None, skimage_wheel: str | os.PathLike | None, work: Path
):
    """A folder holding scikit-image's data files: given, the installed package's, or a wheel's (given or
    ``pip download --no-deps scikit-image`` into ``$FOLEYKIT_HOME/downloads``; nothing is installed)."""
    from foleykit.paths import foleykit_home

    if skimage_data is not None:
        d = Path(skimage_data).expanduser()
        if not d.is_dir():
            raise DataError(f"--skimage-data {d} does not exist")
        return d, "scikit-image data folder"
    if skimage_wheel is None:
        try:
            import skimage

            return Path(skimage.__file__).parent / "data", f"scikit-image {skimage.__version__}"
        except ImportError:
            pass
        dl = foleykit_home() / "downloads"
        dl.mkdir(parents=True, exist_ok=True)
        wheels = sorted(dl.glob("scikit_image-*.whl"))
        if not wheels:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "scikit-image",
            ]
            r = subprocess.run([*cmd, "-d", str(dl)], check=False, capture_output=True, text=True)
            wheels = sorted(dl.glob("scikit_image-*.whl"))
            if r.returncode != 0 or not wheels:
                raise DataError(
                    f"`pip download scikit-image` failed: {(r.stderr or r.stdout).strip()[-400:]}; pass "
                    "--skimage-wheel FILE or --skimage-data DIR"
                )
        skimage_wheel = wheels[-1]
    wheel = Path(skimage_wheel).expanduser()
    if not wheel.is_file():
        raise DataError(f"--skimage-wheel {wheel} does not exist")
    dest = work / "skimage"
    with zipfile.ZipFile(wheel) as z:
        for n in z.namelist():
            if n.startswith("skimage/data/") and Path(n).name in SKIMAGE:
                (dest / Path(n).name).parent.mkdir(parents=True, exist_ok=True)
                (dest / Path(n).name).write_bytes(z.read(n))
    return dest, wheel.name


def prepare_photos(
    output: str | os.PathLike | None = None,
    *,
    opencv_deb: str | os.PathLike | None = None,
    opencv_extracted: str | os.PathLike | None = None,
    stamps_deb: str | os.PathLike | None = None,
    stamps_extracted: str | os.PathLike | None = None,
    skimage_data: str | os.PathLike | None = None,
    skimage_wheel: str | os.PathLike | None = None,
    sklearn_images: str | os.PathLike | None = None,
    force: bool = False,
) -> Path:
    """Fetch (``apt-get download`` opencv-doc / tuxpaint-stamps-default, ``pip download`` scikit-image when
    it is not installed) and index the photo library (idempotent; written atomically).

    Returns:
        The library folder (``photos.json`` lists every picture with its kind, group, licence and source).
    """
    from foleykit.data import stamps as tux
    from foleykit.data.ufoai import license_for, parse_copyright
    from foleykit.utils.io import atomic_dir, atomic_write_json

    out = Path(output).expanduser() if output is not None else default_photos_dir()
    if is_prepared(out) and not force:
        return out
    entries: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="foleykit-photos-") as work_s,
        atomic_dir(out, marker=MANIFEST, what="a photo library") as tmp,
    ):
        work = Path(work_s)
        os.chmod(tmp, 0o755)
        # opencv-doc example photos
        root = tux.obtain_package(OPENCV_PACKAGE, deb=opencv_deb, extracted=opencv_extracted, work=work)
        data_dir = root / OPENCV_DATA if (root / OPENCV_DATA).is_dir() else root
        cr = next((c for c in (root / OPENCV_COPYRIGHT, root / "copyright") if c.is_file()), None)
        if cr is None:
            raise DataError(f"the Debian copyright file of {OPENCV_PACKAGE} was not found in {root}")
        stanzas = parse_copyright(cr.read_text(encoding="utf-8", errors="replace"))
        shutil.copyfile(cr, tmp / f"copyright.{OPENCV_PACKAGE}")

        def ocv_license(name: str) -> str:
            st = license_for(f"samples/data/{name}", stanzas)
            return st.license if st else "unknown"

        for name, group in sorted(OPENCV_BACKGROUNDS.items()):
            img = _read(data_dir / name)
            if img is None:
                continue
            rel = f"backgrounds/opencv-{Path(name).stem}.jpg"
            _save(img, tmp / rel, "background")
            entries.append({"id": f"opencv:{name}", "path": rel, "kind": "background", "group": f"opencv:{group}",
                                "license": ocv_license(name), "source": f"{OPENCV_PACKAGE}:{OPENCV_DATA}/{name}"})  # fmt: skip
        for i, (name, (x0, y0, x1, y1), surface) in enumerate(OPENCV_TEXTURES):
            img = _read(data_dir / name)
            if img is None:
                continue
            h, w = img.shape[:2]
            crop = img[
                int(y0 * h) : max(int(y1 * h), int(y0 * h) + 8),
                int(x0 * w) : max(int(x1 * w), int(x0 * w) + 8),
            ]
            rel = f"textures/opencv-{Path(name).stem}-{i}.jpg"
            _save(crop, tmp / rel, "texture")
            entries.append({"id": f"opencv:{name}#{i}", "path": rel, "kind": "texture", "surface": surface,
                                "group": f"opencv:{OPENCV_BACKGROUNDS.get(name, name)}", "license": ocv_license(name),
                                "source": f"{OPENCV_PACKAGE}:{OPENCV_DATA}/{name} (crop)"})  # fmt: skip
        # scikit-image and scikit-learn sample photos
        sk_dir, sk_from = _skimage_source(skimage_data, skimage_wheel, work)
        for name, (kind, surface, lic, credit) in sorted(SKIMAGE.items()):
            img = _read(sk_dir / name)
            if img is None:
                continue
            rel = f"{kind}s/skimage-{Path(name).stem}.jpg"
            _save(img, tmp / rel, kind)
            entries.append({"id": f"skimage:{Path(name).stem}", "path": rel, "kind": kind, "surface": surface,
                                "group": f"skimage:{Path(name).stem}", "license": lic, "credit": credit,
                                "source": f"{sk_from}: skimage/data/{name}"})  # fmt: skip
        if sklearn_images is None:
            import sklearn

            sklearn_images = Path(sklearn.__file__).parent / "datasets" / "images"
        for name, (lic, credit) in sorted(SKLEARN.items()):
            img = _read(Path(sklearn_images) / name)
            if img is None:
                continue
            rel = f"backgrounds/sklearn-{Path(name).stem}.jpg"
            _save(img, tmp / rel, "background")
            entries.append({"id": f"sklearn:{Path(name).stem}", "path": rel, "kind": "background", "license": lic,
                                "group": f"sklearn:{Path(name).stem}", "credit": credit,
                                "source": f"scikit-learn: sklearn/datasets/images/{name}"})  # fmt: skip
        # Tux Paint photo cut-outs
        sroot = tux.obtain_package(tux.PACKAGE, deb=stamps_deb, extracted=stamps_extracted, work=work)
        stamp_dir, stamp_cr = tux.locate_stamps(sroot)
        shutil.copyfile(stamp_cr, tmp / f"copyright.{tux.PACKAGE}")
        entries += _cutouts(stamp_dir, tmp)
        if not any(e["kind"] == "background" for e in entries) or not any(
            e["kind"] == "cutout" for e in entries
        ):
            raise DataError("no background photo or no photo cut-out was found in the given sources")
        atomic_write_json(
            tmp / MANIFEST,
            {
                "name": "foleykit-photos",
                "sources": [OPENCV_PACKAGE, tux.PACKAGE, "scikit-image", "scikit-learn"],
                "attribution": ATTRIBUTION,
                "photos": [Photo(**e).__dict__ for e in sorted(entries, key=lambda e: e["id"])],
            },
        )
    return out


def _cutouts(stamp_dir: Path, tmp: Path) -> list[dict[str, Any]]:
    from foleykit.data import stamps as tux

    entries = []
    for png in sorted(stamp_dir.rglob("*.png")):
        rel = png.relative_to(stamp_dir).with_suffix("").as_posix()
        parts = rel.split("/")
        if parts[0] in tux.SKIP_TOPICS or "cartoon" in parts:
            continue
        img = _read(png, alpha=True)
        if img is None or not tux.is_photo(img):
            continue
        role, drop_cat, physics = cutout_role(rel)
        sound = caption = None
        if rel in tux.STAMP_SOUNDS and not rel.startswith("town/"):  # a road sign does not make its sound
            cat, caption = tux.STAMP_SOUNDS[rel]
            sound = f"{cat}/{Path(rel).name}.ogg"
            if role in ("prop", "drop"):
                role = "object"
        dest = f"cutouts/{rel}.png"
        _save(img, tmp / dest, "cutout")
        entries.append({"id": f"tuxpaint:{rel}.png", "path": dest, "kind": "cutout", "role": role,
                            "group": f"tuxpaint:{rel.replace('_mirror', '')}", "license": tux.LICENSE,
                            "source": f"{tux.PACKAGE}:{tux.STAMPS_PATH}/{rel}.png", "noun": tux.stamp_noun(stamp_dir, rel),
                            "drop_category": drop_cat, "physics": physics, "sound": sound, "caption": caption})  # fmt: skip
    return entries


ATTRIBUTION = (
    "Photos: OpenCV sample data (Debian opencv-doc; Apache-2.0 AND BSD-3-Clause, (c) Intel Corporation, Willow "
    "Garage, OpenCV Foundation and contributors); scikit-image sample data (astronaut: NASA, public domain; "
    "camera: Lav Varshney, CC0; chelsea: Stefan van der Walt, CC0; coffee: Rachel Michetti, CC0; rocket: SpaceX, "
    "public domain; grass, gravel, brick textures: CC0); scikit-learn sample images (china.jpg by danielbuechele "
    "and flower.jpg by vultilion, Flickr, CC-BY-2.0); photo cut-outs from Tux Paint Stamps (Debian "
    "tuxpaint-stamps-default, GPL-2, (c) 2002-2022 Bill Kendrick and contributors)."
)
