"""Evaluate a liveness or deepfake model on a labelled manifest or folder, through the
serving preprocessing (decode, detect, select, crop, ONNX) or over HTTP against a
running service. Prints the figures, writes a JSON report and a ROC/DET plot.

    python -m training.evaluate liveness --data ../shared/data/liveness --split val
    python -m training.evaluate deepfake --data ../shared/data/deepfake --split val
    python -m training.evaluate liveness --data DIR --url http://127.0.0.1:5001 --key fc_...
    python -m training.evaluate liveness --loso .cache/loso/NAME   (leave-one-source-out)
    python -m training.evaluate deepfake --lofo .cache/lofo/NAME   (leave-one-family-out)
    python -m training.evaluate deepfake --loso .cache/loso/NAME   (webcams it never saw)

Liveness figures follow ISO/IEC 30107-3: APCER per attack type, BPCER, ACER (worst
APCER and BPCER averaged), plus ROC AUC and BPCER at APCER 1 % and 5 %. Deepfake
figures: AUC per fake kind, false-positive rate on real faces, detection rate per kind.
Every AUC comes with a 95 % bootstrap interval over the manifest's groups."""

from __future__ import annotations

import argparse
import base64
import csv
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from training.data import Sample

BONA_FIDE_KINDS = {"live", "real"}
CUT_OUT_SCALE = 1.2  # --cut_out: the face is cut at this many times its box


# ---- metrics --------------------------------------------------------------------------------


def roc_auc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Probability that a random positive outscores a random negative (ties count half);
    `weights` counts each sample that many times (the bootstrap's resamples)."""
    positive = positive.astype(bool)
    weights = np.ones(len(scores)) if weights is None else np.asarray(weights, np.float64)
    neg_order = np.argsort(scores[~positive], kind="mergesort")
    neg, neg_weight = scores[~positive][neg_order], weights[~positive][neg_order]
    neg_weight_below = np.concatenate([[0.0], np.cumsum(neg_weight)])
    pos, pos_weight = scores[positive], weights[positive]
    total = pos_weight.sum() * neg_weight_below[-1]
    if total == 0:
        return float("nan")
    below = neg_weight_below[np.searchsorted(neg, pos, "left")]
    up_to = neg_weight_below[np.searchsorted(neg, pos, "right")]
    return float((pos_weight * (below + up_to) / 2).sum() / total)


def roc_auc_interval(
    scores: np.ndarray, positive: np.ndarray, groups: np.ndarray, resamples: int = 1000, seed: int = 0
) -> list[float]:
    """95 % bootstrap interval of roc_auc, resampling whole groups (a DFDC video's real crop
    and its face swap, a person's frames), which are not independent draws."""
    if np.isnan(roc_auc(scores, positive)):
        return [float("nan"), float("nan")]
    codes = np.unique(groups, return_inverse=True)[1]
    n_groups = int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(resamples):
        times_drawn = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
        aucs.append(roc_auc(scores, positive, times_drawn[codes]))
    return [float(q) for q in np.nanquantile(aucs, [0.025, 0.975])]


def bona_fide_threshold(bona_fide_scores: np.ndarray, rate: float, bona_fide_high: bool) -> float:
    """The threshold at which `rate` of bona fide samples are wrongly flagged."""
    q = rate if bona_fide_high else 1 - rate
    return float(np.quantile(bona_fide_scores, q))


def calibrate(
    onnx_path: Path, crops: np.ndarray, positive: np.ndarray, rate: float, bona_fide_high: bool
) -> float:
    from facecheck.models import FaceModel

    model = FaceModel(onnx_path, threads=2)
    # in chunks: one batch of thousands of 224 px crops would need tens of GB
    scores = np.concatenate([model(crops[i : i + 64]) for i in range(0, len(crops), 64)])
    bona_fide = positive.astype(bool) if bona_fide_high else ~positive.astype(bool)
    return bona_fide_threshold(scores[bona_fide], rate, bona_fide_high)


def liveness_report(
    scores: np.ndarray, kinds: list[str], threshold: float, groups: list[str] | None = None
) -> dict:
    """`groups`: each sample's group (person, video) for the AUC's interval; default one each."""
    kinds_arr = np.array(kinds)
    group_arr = np.array(groups if groups is not None else range(len(kinds)))
    bona = np.isin(kinds_arr, list(BONA_FIDE_KINDS))
    accepted = scores >= threshold
    apcer = {k: float(accepted[kinds_arr == k].mean()) for k in sorted(set(kinds) - BONA_FIDE_KINDS)}
    bpcer = float((~accepted[bona]).mean()) if bona.any() else float("nan")
    attack_scores = np.sort(scores[~bona])

    def bpcer_at_apcer(rate: float) -> float:
        if not len(attack_scores) or not bona.any():
            return float("nan")
        # smallest threshold with at most `rate` of attacks accepted
        k = int(np.floor(rate * len(attack_scores)))
        thr = (
            np.nextafter(attack_scores[len(attack_scores) - k - 1], np.inf)
            if k < len(attack_scores)
            else -np.inf
        )
        return float((scores[bona] < thr).mean())

    return {
        "threshold": threshold,
        "counts": dict(Counter(kinds)),
        "apcer": apcer,
        "bpcer": bpcer,
        "acer": (max(apcer.values(), default=0.0) + bpcer) / 2,
        "roc_auc": roc_auc(scores, bona),
        "roc_auc_95ci": roc_auc_interval(scores, bona, group_arr),
        "bpcer_at_apcer_1pct": bpcer_at_apcer(0.01),
        "bpcer_at_apcer_5pct": bpcer_at_apcer(0.05),
    }


def deepfake_report(
    scores: np.ndarray, kinds: list[str], threshold: float, groups: list[str] | None = None
) -> dict:
    """`groups`: each sample's group (video, image) for the AUCs' intervals; default one each."""
    kinds_arr = np.array(kinds)
    group_arr = np.array(groups if groups is not None else range(len(kinds)))
    real = np.isin(kinds_arr, list(BONA_FIDE_KINDS))
    flagged = scores >= threshold
    fake_kinds = sorted(set(kinds) - BONA_FIDE_KINDS)
    # each fake kind against all real faces
    against_reals = {k: real | (kinds_arr == k) for k in fake_kinds}
    return {
        "threshold": threshold,
        "counts": dict(Counter(kinds)),
        "roc_auc": roc_auc(scores, ~real),
        "roc_auc_95ci": roc_auc_interval(scores, ~real, group_arr),
        "auc_per_kind": {k: roc_auc(scores[sel], ~real[sel]) for k, sel in against_reals.items()},
        "auc_per_kind_95ci": {
            k: roc_auc_interval(scores[sel], ~real[sel], group_arr[sel]) for k, sel in against_reals.items()
        },
        "false_positive_rate_real": float(flagged[real].mean()) if real.any() else float("nan"),
        "detection_rate_per_kind": {k: float(flagged[kinds_arr == k].mean()) for k in fake_kinds},
    }


def plot_roc(scores: np.ndarray, kinds: list[str], task: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds_arr = np.array(kinds)
    real = np.isin(kinds_arr, list(BONA_FIDE_KINDS))
    fig, ax = plt.subplots(figsize=(5, 5))
    for kind in sorted(set(kinds) - BONA_FIDE_KINDS):
        sel = real | (kinds_arr == kind)
        s, neg = scores[sel], real[sel]
        if task == "deepfake":
            s = -s  # higher deepfake score = fake; orient so "accepted as bona fide" is high
        thresholds = np.unique(s)[::-1]
        far = [(s[~neg] >= t).mean() for t in thresholds]  # attacks accepted
        frr = [(s[neg] < t).mean() for t in thresholds]  # bona fide rejected
        ax.plot(far, 1 - np.array(frr), label=f"{kind} (n={int((~neg).sum())})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.5)
    ax.set_xlabel("attack / fake accepted as bona fide (APCER, miss rate)")
    ax.set_ylabel("bona fide accepted (1 - BPCER, 1 - FPR)")
    ax.set_title(f"{task} ROC")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- scoring --------------------------------------------------------------------------------


def score_locally(
    task: str,
    files: list[Path],
    models_dir: Path,
    turns: int = 0,
    reframe: float = 0.0,
    scenes: list[Path] | None = None,
) -> tuple[list[float | None], str]:
    """Scores through the serving pipeline; None where the service would not judge.
    Optional changes to every image first, each a way an attack (or an odd photo) arrives:
    - `turns` quarter-turns it (np.rot90): a photo stored without its orientation tag;
    - `reframe` > 0 cuts it down to a square of that many times its face box: a printed
      photo held so close that it fills the camera's view, its edges out of sight;
    - `scenes` (one file per image) cuts its face out at CUT_OUT_SCALE x the face box and
      puts it over the face of that scene: a cut-out photo held up in front of a real scene."""
    from facecheck.faces import FaceNotUsable, YuNetDetector
    from facecheck.images import ImageError, decode_bytes
    from facecheck.models import DEEPFAKE_FILE, LIVENESS_FILE, FaceModel
    from facecheck.pipeline import check_crops, locate_face
    from facecheck.preprocess import CropSpec, crop_face
    from facecheck.settings import Settings

    model = FaceModel(models_dir / (LIVENESS_FILE if task == "liveness" else DEEPFAKE_FILE), threads=2)
    detector, settings = YuNetDetector(), Settings.from_env()

    def cut(decoded, scale: float) -> np.ndarray:
        decoded, face = locate_face(decoded, detector, settings)
        return crop_face(decoded.pixels, face, CropSpec(scale=scale, size=max(8, round(scale * face.size))))

    def put_over(scene_file: Path, piece: np.ndarray):
        scene = decode_bytes(scene_file.read_bytes(), settings.max_image_pixels)
        scene, face = locate_face(scene, detector, settings)
        x, y, w, h = face.box.tolist()
        height, width = scene.pixels.shape[:2]
        side = min(round(CUT_OUT_SCALE * face.size), height, width)
        x0 = min(max(0, round(x + w / 2 - side / 2)), width - side)
        y0 = min(max(0, round(y + h / 2 - side / 2)), height - side)
        pixels = scene.pixels.copy()
        pixels[y0 : y0 + side, x0 : x0 + side] = cv2.resize(piece, (side, side), interpolation=cv2.INTER_AREA)
        return replace(scene, pixels=pixels)

    scores: list[float | None] = []
    reasons: Counter[str] = Counter()
    for i, file in enumerate(files):
        try:
            decoded = decode_bytes(file.read_bytes(), settings.max_image_pixels)
            if turns % 4:
                decoded = replace(decoded, pixels=np.ascontiguousarray(np.rot90(decoded.pixels, turns)))
            if reframe:
                decoded = replace(decoded, pixels=cut(decoded, reframe))
            if scenes:
                decoded = put_over(scenes[i], cut(decoded, CUT_OUT_SCALE))
            crop = check_crops(decoded, detector, settings, {task: model.crop})[task]
        except ImageError:
            scores.append(None)
            reasons["corrupt"] += 1
            continue
        except FaceNotUsable as exc:
            scores.append(None)
            reasons[exc.reason] += 1
            continue
        scores.append(float(model(crop)[0]))
    return scores, json.dumps(dict(reasons)) + f" model threshold {model.threshold:.4f}"


def cut_out_scenes(samples: list[Sample]) -> list[Path]:
    """For each sample, a bona fide image of another group (person) of the same set to put
    its cut-out face over (fixed draw)."""
    rng = np.random.default_rng(0)
    bona_fide = [s for s in samples if s.kind in BONA_FIDE_KINDS]
    scenes = []
    for sample in samples:
        others = [s for s in bona_fide if s.group != sample.group]
        scenes.append(others[rng.integers(len(others))].path)
    return scenes


def per_source_reports(
    make_report, scores: np.ndarray, kinds: list[str], sources: list[str], threshold: float, groups=None
) -> dict[str, dict]:
    """`make_report` of each source's samples; `groups` as make_report takes them (default one
    group per sample)."""
    reports = {}
    for source in sorted(set(sources)):
        idx = [j for j, s in enumerate(sources) if s == source]
        picked_groups = None if groups is None else [groups[j] for j in idx]
        reports[source] = make_report(scores[idx], [kinds[j] for j in idx], threshold, picked_groups)
    return reports


def fold_models(loso_dir: Path) -> dict[int, Path]:
    """The fold models of a leave-one-source-out run: LOSO_DIR/fold<k>/ holds the model
    trained without fold k's sources."""
    models = {int(d.name[4:]): d for d in loso_dir.glob("fold*") if d.name[4:].isdigit()}
    if not models:
        raise SystemExit(f"no fold<k>/ model folders in {loso_dir} (python -m training.loso)")
    return dict(sorted(models.items()))


def score_held_out(task: str, samples: list[Sample], loso_dir: Path) -> list[float | None]:
    """Each sample scored by the fold model that never saw its source; None where that fold
    has no model or the service would not judge it."""
    scores: list[float | None] = [None] * len(samples)
    for fold, models_dir in fold_models(loso_dir).items():
        idx = [i for i, s in enumerate(samples) if s.fold == fold]
        fold_scores, note = score_locally(task, [samples[i].path for i in idx], models_dir)
        print(f"fold {fold}: {len(idx)} images, not judged {note}", flush=True)
        for i, score in zip(idx, fold_scores, strict=True):
            scores[i] = score
    return scores


def loso_summary(report: dict) -> list[str]:
    """The leave-one-source-out table, a line per source, worst first."""
    rows = sorted(
        report["per_source"].items(), key=lambda kv: -np.nanmax([kv[1]["bpcer"], *kv[1]["apcer"].values()])
    )
    lines = [f"{'source':14s} {'live':>5s} {'attacks':>8s} {'BPCER':>7s} {'APCER':>22s} {'AUC':>6s}"]
    for source, r in rows:
        n_live = sum(n for k, n in r["counts"].items() if k in BONA_FIDE_KINDS)
        apcer = " ".join(f"{k} {v:.1%}" for k, v in r["apcer"].items())
        lines.append(
            f"{source:14s} {n_live:5d} {sum(r['counts'].values()) - n_live:8d} {r['bpcer']:7.1%} "
            f"{apcer:>22s} {r['roc_auc']:6.3f}"
        )
    if new := report.get("new_cameras"):
        apcer = ", ".join(f"{k} {v:.1%}" for k, v in new["apcer"].items())
        lines.append(
            f"new cameras ({', '.join(new['sources'])}; not in the threshold or the pooled figures): "
            f"BPCER {new['bpcer']:.1%}, APCER {apcer}, AUC {new['roc_auc']:.3f}"
        )
    return lines


def spread(items: list, limit: int) -> list:
    """At most `limit` of `items` (all where 0), evenly spaced: each source keeps its share."""
    if not limit or len(items) <= limit:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def lofo_models(lofo_dir: Path) -> dict[Path, list[str]]:
    """The models of a leave-one-family-out run and the families each never saw:
    LOFO_DIR/family-<a>[+<b>...]/ holds the model trained without families a (and b)."""
    from facecheck.models import DEEPFAKE_FILE
    from training.families import names

    models = {d: names(d.name.removeprefix("family-")) for d in sorted(lofo_dir.glob("family-*"))}
    models = {d: held for d, held in models.items() if (d / DEEPFAKE_FILE).exists()}
    if not models:
        raise SystemExit(f"no family-<name>/ model folders in {lofo_dir} (python -m training.lofo)")
    return models


def fetched_sources_trained(models_dir: Path) -> set[str]:
    """The fetched sources a model trained on (its summary's, training.train --fetched_share):
    their real faces would score low by training, so they judge it nothing."""
    from facecheck.models import DEEPFAKE_FILE

    summary = models_dir / Path(DEEPFAKE_FILE).with_suffix(".train.json")
    if not summary.exists():
        return set()
    return set(json.loads(summary.read_text()).get("fetched_sources_trained", []))


def lofo_samples() -> tuple[list[Sample], list[Sample], dict[str, list[Sample]]]:
    """What leave-one-family-out scores: (the shared set's val split, the real faces, each real
    fake family's fakes). Real faces: the shared set's val reals and the fetched sources' reals
    that training does not draw (training.train.split_samples). A family's fakes: the shared
    set's val fakes of it, and every fake of it in the fetched sources (its model trained on
    none of them)."""
    from training.data import SOURCES_ROOT, dataset_dir, family_of, read_manifest
    from training.train import split_samples

    val = [s for s in read_manifest(dataset_dir("deepfake")) if s.split == "val"]
    fetched = []
    if (SOURCES_ROOT / "deepfake" / "manifest.csv").exists():
        fetched = read_manifest(SOURCES_ROOT / "deepfake")
    reals = [s for s in val if s.label == "real"]
    trained = {s.path for s in split_samples("deepfake", "train", np.random.default_rng(0))}
    reals += [s for s in fetched if s.label == "real" and s.path not in trained]
    fakes: dict[str, list[Sample]] = {}
    for s in val + fetched:
        if s.label != "real":
            fakes.setdefault(family_of(s), []).append(s)
    return val, reals, fakes


def score_synthetic(family: str, model_file: Path, val: list[Sample], limit: int = 0):
    """A synthetic family's fakes, made (training.families.synthetic_fakes, fixed seed) from the
    crops that serving would cut from the shared set's val real faces, scored by the model
    directly (they are crops, not files); (scores, their real faces, the largest difference
    between the model's scores of the unaltered crops and the served scores of those faces, on
    up to 32 of them: the crops are the served ones)."""
    from facecheck.models import FaceModel
    from training.data import face_crops
    from training.families import synthetic_fakes

    model = FaceModel(model_file, threads=2)
    fc = face_crops(val, (model.crop,))  # the whole val split: the training runs' crop cache
    idx = spread([i for i, s in enumerate(fc.samples) if s.label == "real"], limit)
    crops, marks = fc.crops[model.crop][idx], fc.landmarks[model.crop][idx]
    fakes = synthetic_fakes(family, crops, marks)
    scores = np.concatenate([model(fakes[i : i + 64]) for i in range(0, len(fakes), 64)] or [np.zeros(0)])
    made_from = [fc.samples[i] for i in idx]
    served = score_locally("deepfake", [s.path for s in made_from[:32]], model_file.parent)[0]
    direct = model(crops[:32]) if len(crops) else np.zeros(0)
    gaps = [abs(a - b) for a, b in zip(served, direct, strict=True) if a is not None]
    return scores, made_from, float(max(gaps, default=float("nan")))


def lofo_family_report(
    scores: np.ndarray, groups: list[str], real_scores: np.ndarray, reals: list[Sample], threshold: float
) -> dict:
    """One held-out family's fakes (`scores`) against the real faces scored by the same model."""
    kinds = ["fake"] * len(scores) + ["real"] * len(real_scores)
    all_groups = groups + [s.group for s in reals]
    r = deepfake_report(np.concatenate([scores, real_scores]), kinds, threshold, all_groups)
    flagged = real_scores >= threshold
    sources = np.array([s.source for s in reals])
    return {
        "counts": {"fakes": len(scores), "reals": len(real_scores)},
        "threshold": threshold,
        "roc_auc": r["auc_per_kind"].get("fake", float("nan")),
        "roc_auc_95ci": r["auc_per_kind_95ci"].get("fake", [float("nan")] * 2),
        "detection_rate": r["detection_rate_per_kind"].get("fake", float("nan")),
        "false_positive_rate_real": r["false_positive_rate_real"],
        "false_positive_rate_per_real_source": {
            source: float(flagged[sources == source].mean()) for source in sorted(set(sources))
        },
    }


def lofo_summary(report: dict) -> list[str]:
    """The leave-one-family-out table, a line per held-out family, worst AUC first."""
    rows = sorted(report["per_family"].items(), key=lambda kv: np.nan_to_num(kv[1]["roc_auc"], nan=2.0))
    fw, mw = max([6, *(len(f) for f, _ in rows)]), max([5, *(len(r["model"]) for _, r in rows)])
    lines = [
        f"{'family':{fw}s} {'model':{mw}s} {'fakes':>6s} {'reals':>6s} {'AUC':>6s} {'95% CI':>13s} "
        f"{'caught':>7s} {'FP':>6s}  FP per real source"
    ]
    for family, r in rows:
        low, high = r["roc_auc_95ci"]
        fp = " ".join(f"{k} {v:.1%}" for k, v in r["false_positive_rate_per_real_source"].items())
        lines.append(
            f"{family:{fw}s} {r['model']:{mw}s} {r['counts']['fakes']:6d} {r['counts']['reals']:6d} "
            f"{r['roc_auc']:6.3f} {f'{low:.3f}-{high:.3f}':>13s} {r['detection_rate']:7.1%} "
            f"{r['false_positive_rate_real']:6.1%}  {fp}"
        )
    return lines


def score_over_http(task: str, files: list[Path], url: str, key: str) -> tuple[list[float | None], str]:
    import requests

    endpoint = f"{url.rstrip('/')}/{'liveness' if task == 'liveness' else 'deepfake'}"
    scores: list[float | None] = []
    statuses: Counter[int] = Counter()
    with requests.Session() as http:
        for file in files:
            data = file.read_bytes()
            mime = "png" if data.startswith(b"\x89PNG") else "jpeg"
            body = {
                "hash_id": key,
                "selfie_image": f"data:image/{mime};base64,{base64.b64encode(data).decode()}",
            }
            resp = http.post(endpoint, json=body, timeout=60)
            statuses[resp.status_code] += 1
            payload = resp.json() if resp.status_code == 201 else {}
            if "liveness_result" in payload and task == "liveness":
                scores.append(payload["liveness_result"]["liveness_score"])
            elif "deepfake_result" in payload and task == "deepfake":
                scores.append(payload["deepfake_result"]["deepfake_score"])
            else:
                scores.append(None)
    return scores, f"HTTP statuses {dict(statuses)}"


def main() -> None:
    from facecheck.settings import PROJECT_ROOT
    from training.data import manifest_or_folder

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("task", choices=["liveness", "deepfake"])
    parser.add_argument(
        "--data", type=Path, help="folder with manifest.csv, or label/kind/*.jpg (not with --loso)"
    )
    parser.add_argument("--split", default="val", help="manifest split to use (val, train, all)")
    parser.add_argument("--models", type=Path, default=PROJECT_ROOT / "models")
    parser.add_argument("--threshold", type=float, help="default: the model's (or the service's)")
    parser.add_argument("--url", help="evaluate a running service instead of the model file")
    parser.add_argument("--key", help="API key for --url")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--turns", type=int, default=0, help="quarter-turn every image first (local only)")
    parser.add_argument(
        "--reframe", type=float, default=0.0, help="cut every image to N x its face box first (local only)"
    )
    parser.add_argument(
        "--cut_out",
        action="store_true",
        help="put every face, cut out, over another person's bona fide image first (local only)",
    )
    parser.add_argument(
        "--loso",
        type=Path,
        help="leave-one-source-out: a folder of fold<k>/ models (training.loso); every source of "
        "the liveness set and of the fetched sources is scored by the model that never saw it; "
        "liveness: the threshold is set on their pooled bona fide scores at --bpcer; deepfake: "
        "the genuine faces each fold model flags at its own threshold",
    )
    parser.add_argument("--bpcer", type=float, default=0.05, help="--loso: pooled bona fide rejected")
    parser.add_argument(
        "--lofo",
        type=Path,
        help="leave-one-family-out: a folder of family-<name>/ models (training.lofo); each "
        "family's fakes and the real faces are scored by the model that never saw the family, "
        "at that model's threshold (or --threshold)",
    )
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports")
    args = parser.parse_args()
    if args.loso:
        return evaluate_loso(args)
    if args.lofo:
        return evaluate_lofo(args)
    if args.data is None:
        parser.error("--data is required (or --loso, --lofo)")
    if (args.turns or args.reframe or args.cut_out) and args.url:
        parser.error("--turns, --reframe and --cut_out change images here only; send such files to --url")

    samples = [s for s in manifest_or_folder(args.data) if args.split in ("all", s.split)]
    if args.limit:
        samples = samples[: args.limit]
    files = [s.path for s in samples]
    if args.url:
        raw, note = score_over_http(args.task, files, args.url, args.key or "")
    else:
        scenes = cut_out_scenes(samples) if args.cut_out else None
        raw, note = score_locally(args.task, files, args.models, args.turns, args.reframe, scenes)
    judged = [i for i, s in enumerate(raw) if s is not None]
    scores = np.array([raw[i] for i in judged], np.float64)
    kinds = [samples[i].kind for i in judged]
    groups = [samples[i].group for i in judged]
    threshold = args.threshold
    if threshold is None:
        from facecheck.models import DEEPFAKE_FILE, LIVENESS_FILE, FaceModel

        threshold = FaceModel(
            args.models / (LIVENESS_FILE if args.task == "liveness" else DEEPFAKE_FILE)
        ).threshold
    make_report = liveness_report if args.task == "liveness" else deepfake_report
    report = make_report(scores, kinds, threshold, groups)
    report |= {
        "data": str(args.data),
        "split": args.split,
        "turns": args.turns,
        "reframe": args.reframe,
        "cut_out": args.cut_out,
        "mode": "http" if args.url else "onnx",
        "not_judged": len(raw) - len(judged),
        "note": note,
    }
    report["per_source"] = per_source_reports(
        make_report, scores, kinds, [samples[i].source for i in judged], threshold, groups
    )
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = ("-http" if args.url else "") + (f"-turned{args.turns}" if args.turns else "")
    suffix += (f"-reframed{args.reframe}" if args.reframe else "") + ("-cut-out" if args.cut_out else "")
    stem = args.out / f"{args.task}-{args.split}{suffix}"
    Path(f"{stem}.json").write_text(json.dumps(report, indent=2))
    write_scores_csv(Path(f"{stem}-scores.csv"), samples, raw)
    plot_roc(scores, kinds, args.task, Path(f"{stem}.png"))
    print(json.dumps({k: v for k, v in report.items() if k != "per_source"}, indent=2))
    print(f"wrote {stem}.json, {stem}-scores.csv and {stem}.png")


def write_scores_csv(path: Path, samples: list[Sample], raw: list[float | None]) -> None:
    """A score per image (empty where not judged), to compare other models on the same images."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "source", "kind", "fold", "score"])
        for sample, score in zip(samples, raw, strict=True):
            writer.writerow(
                [sample.path, sample.source, sample.kind, sample.fold, "" if score is None else score]
            )


def evaluate_loso(args: argparse.Namespace) -> None:
    from training.data import liveness_samples

    if args.task == "deepfake":
        return evaluate_deepfake_loso(args)
    samples = [s for s in liveness_samples() if s.fold]
    raw = score_held_out(args.task, samples, args.loso)
    judged = [i for i, s in enumerate(raw) if s is not None]
    scores = np.array([raw[i] for i in judged], np.float64)
    kinds = [samples[i].kind for i in judged]
    groups = [samples[i].source for i in judged]
    # the new cameras (split "test", training.sources.NEW_CAMERAS_FOLD) take no part in the
    # threshold, the pooled figures or the worst source that recipes are chosen by
    tested = np.array([samples[i].split == "test" for i in judged], bool)
    chosen_by = ~tested
    bona = np.isin(kinds, list(BONA_FIDE_KINDS))
    threshold = (
        args.threshold
        if args.threshold is not None
        else bona_fide_threshold(scores[bona & chosen_by], args.bpcer, bona_fide_high=True)
    )
    pick = np.flatnonzero(chosen_by)
    report = liveness_report(scores[pick], [kinds[i] for i in pick], threshold, [groups[i] for i in pick])
    report |= {"loso": str(args.loso), "threshold_rule": f"pooled held-out bona fide at BPCER {args.bpcer}"}
    report["not_judged"] = len(raw) - len(judged)
    report["per_source"] = per_source_reports(liveness_report, scores, kinds, groups, threshold)
    for i in judged:
        report["per_source"][samples[i].source]["fold"] = samples[i].fold
    chosen = {groups[i] for i in pick}
    # a source of one class (live frames only) has no AUC
    per_source = [r for source, r in report["per_source"].items() if source in chosen]
    report["worst_source_bpcer"] = float(np.nanmax([r["bpcer"] for r in per_source]))
    report["worst_source_auc"] = float(np.nanmin([r["roc_auc"] for r in per_source]))
    if tested.any():
        new = np.flatnonzero(tested)
        report["new_cameras"] = liveness_report(
            scores[new], [kinds[i] for i in new], threshold, [groups[i] for i in new]
        ) | {"sources": sorted({groups[i] for i in new})}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"liveness-loso-{args.loso.name}"
    Path(f"{stem}.json").write_text(json.dumps(report, indent=2))
    write_scores_csv(Path(f"{stem}-scores.csv"), samples, raw)
    plot_roc(scores, kinds, args.task, Path(f"{stem}.png"))
    print("\n".join(loso_summary(report)))
    print(
        f"pooled: AUC {report['roc_auc']:.4f} {report['roc_auc_95ci']}, BPCER {report['bpcer']:.1%}, "
        f"APCER {report['apcer']}, threshold {threshold:.4f}; worst source BPCER "
        f"{report['worst_source_bpcer']:.1%}, AUC {report['worst_source_auc']:.3f}"
    )
    print(f"wrote {stem}.json and {stem}.png")


def flagged_share(flagged: np.ndarray, kinds: list[str]) -> dict:
    """Genuine faces flagged as deepfakes: of all, of the live frames, of the replays and prints
    (a real face through a screen or on paper), per kind."""
    kinds_arr = np.array(kinds)
    live = np.isin(kinds_arr, list(BONA_FIDE_KINDS))
    return {
        "counts": dict(Counter(kinds)),
        "flagged": float(flagged.mean()) if len(flagged) else float("nan"),
        "flagged_live": float(flagged[live].mean()) if live.any() else float("nan"),
        "flagged_attacks": float(flagged[~live].mean()) if (~live).any() else float("nan"),
        "flagged_per_kind": {k: float(flagged[kinds_arr == k].mean()) for k in sorted(set(kinds))},
    }


def evaluate_deepfake_loso(args: argparse.Namespace) -> None:
    """Deepfake false positives on cameras a model never saw: every whole webcam frame of the
    liveness sources (live, replayed or printed: none is AI-made) scored by the deepfake fold
    model trained without its fold's webcams (training.loso --task=deepfake), at that model's
    own threshold. A recipe is judged by its worst source."""
    from facecheck.models import DEEPFAKE_FILE, FaceModel
    from training.data import liveness_samples

    samples = [s for s in liveness_samples() if s.fold]
    raw = score_held_out(args.task, samples, args.loso)
    models = fold_models(args.loso)
    thresholds = {fold: FaceModel(d / DEEPFAKE_FILE).threshold for fold, d in models.items()}
    judged = [i for i, score in enumerate(raw) if score is not None]
    flagged = np.array([raw[i] >= thresholds[samples[i].fold] for i in judged], bool)
    kinds = [samples[i].kind for i in judged]
    sources = [samples[i].source for i in judged]
    report = flagged_share(flagged, kinds) | {"loso": str(args.loso), "not_judged": len(raw) - len(judged)}
    report["folds"] = {}
    for fold, models_dir in models.items():
        summary = models_dir / "deepfake.train.json"  # the training command's, where it is there
        val_auc = json.loads(summary.read_text())["history"][-1]["val_auc"] if summary.exists() else None
        report["folds"][fold] = {"threshold": thresholds[fold], "val_auc": val_auc}
    report["per_source"] = {}
    for source in sorted(set(sources)):
        idx = [j for j, s in enumerate(sources) if s == source]
        fold = samples[judged[idx[0]]].fold
        report["per_source"][source] = {"fold": fold} | flagged_share(flagged[idx], [kinds[j] for j in idx])
    live = [r["flagged_live"] for r in report["per_source"].values() if not np.isnan(r["flagged_live"])]
    report["worst_source_flagged_live"] = max(live, default=float("nan"))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"deepfake-loso-{args.loso.name}"
    Path(f"{stem}.json").write_text(json.dumps(report, indent=2))
    write_scores_csv(Path(f"{stem}-scores.csv"), samples, raw)
    rows = sorted(report["per_source"].items(), key=lambda kv: -np.nan_to_num(kv[1]["flagged_live"]))
    print(f"{'source':14s} {'fold':>4s} {'live':>5s} {'flagged':>8s} {'attacks':>8s} {'flagged':>8s}")
    for source, r in rows:
        n_live = sum(n for k, n in r["counts"].items() if k in BONA_FIDE_KINDS)
        n_attacks = sum(r["counts"].values()) - n_live
        print(
            f"{source:14s} {r['fold']:4d} {n_live:5d} {r['flagged_live']:8.1%} {n_attacks:8d} "
            f"{r['flagged_attacks']:8.1%}"
        )
    print(
        f"all: {report['flagged_live']:.1%} of live frames, {report['flagged_attacks']:.1%} of replays "
        f"and prints flagged; "
        f"worst source {report['worst_source_flagged_live']:.1%}; fold models' val AUC "
        + ", ".join(f"{f} {v['val_auc'] or float('nan'):.3f}" for f, v in report["folds"].items())
    )
    print(f"wrote {stem}.json")


def evaluate_lofo(args: argparse.Namespace) -> None:
    """Every held-out family scored by the model that never saw it (lofo_models), against the
    real faces scored by that model: files (real faces, real fakes) through the serving
    pipeline (score_locally); a synthetic family's fakes, which are crops, made from the served
    crops of the val real faces and scored by the model file directly (score_synthetic).
    --limit: at most that many real faces, and fakes per family, evenly spaced (spread)."""
    from facecheck.models import DEEPFAKE_FILE, FaceModel
    from training.families import SYNTHETIC_FAMILIES

    if args.task != "deepfake":
        raise SystemExit("--lofo is for deepfake (its families are ways fakes are made)")
    val, reals, fakes = lofo_samples()
    reals, fakes = spread(reals, args.limit), {f: spread(s, args.limit) for f, s in fakes.items()}
    per_family: dict[str, dict] = {}
    rows: list[tuple] = []  # per image: model, family, path, source, kind, score
    models = lofo_models(args.lofo)
    twice = sorted({f for held in models.values() for f in held if sum(f in h for h in models.values()) > 1})
    if twice:
        raise SystemExit(f"{', '.join(twice)} held out by more than one model in {args.lofo}")
    for models_dir, held in models.items():
        model_file = models_dir / DEEPFAKE_FILE
        threshold = args.threshold if args.threshold is not None else FaceModel(model_file).threshold
        trained = fetched_sources_trained(models_dir)
        unseen = [s for s in reals if s.source not in trained]
        real_raw, note = score_locally("deepfake", [s.path for s in unseen], models_dir)
        print(f"{models_dir.name}: {len(unseen)} real faces, not judged {note}", flush=True)
        rows += [
            (models_dir.name, "", s.path, s.source, s.kind, x) for s, x in zip(unseen, real_raw, strict=True)
        ]
        judged_reals = [s for s, x in zip(unseen, real_raw, strict=True) if x is not None]
        real_scores = np.array([x for x in real_raw if x is not None], np.float64)
        for family in held:
            if family in SYNTHETIC_FAMILIES:
                scores, made_from, gap = score_synthetic(family, model_file, val, args.limit)
                groups = [s.group for s in made_from]
                extra = {"synthetic": True, "crop_vs_served_max_abs": gap, "not_judged": 0}
                rows += [
                    (models_dir.name, family, f"{family}:{s.path}", s.source, family, x)
                    for s, x in zip(made_from, scores, strict=True)
                ]
            else:
                samples = fakes.get(family, [])
                raw, note = score_locally("deepfake", [s.path for s in samples], models_dir)
                print(f"{models_dir.name}: {len(samples)} {family} fakes, not judged {note}", flush=True)
                rows += [
                    (models_dir.name, family, s.path, s.source, s.kind, x)
                    for s, x in zip(samples, raw, strict=True)
                ]
                groups = [s.group for s, x in zip(samples, raw, strict=True) if x is not None]
                scores = np.array([x for x in raw if x is not None], np.float64)
                extra = {"synthetic": False, "not_judged": len(raw) - len(scores)}
            entry = lofo_family_report(
                np.asarray(scores, np.float64), groups, real_scores, judged_reals, threshold
            )
            per_family[family] = {"model": models_dir.name, "model_held_out": held, **entry, **extra}
            per_family[family]["reals_not_judged"] = len(unseen) - len(judged_reals)
            per_family[family]["real_sources_trained_on"] = sorted(trained)
    scored = {f: r["roc_auc"] for f, r in per_family.items() if not np.isnan(r["roc_auc"])}
    worst = min(scored, key=scored.__getitem__) if scored else None
    report = {
        "lofo": str(args.lofo),
        "threshold_rule": "each model's own" if args.threshold is None else f"{args.threshold} for all",
        "worst_family": worst,
        "worst_family_auc": scored[worst] if worst else float("nan"),
        "worst_real_source_fpr": max(
            (v for r in per_family.values() for v in r["false_positive_rate_per_real_source"].values()),
            default=float("nan"),
        ),
        "per_family": per_family,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"deepfake-lofo-{args.lofo.name}"
    Path(f"{stem}.json").write_text(json.dumps(report, indent=2))
    with open(f"{stem}-scores.csv", "w", newline="") as f:  # per image, to compare other models on them
        writer = csv.writer(f)
        writer.writerow(["model", "held_out_family", "path", "source", "kind", "score"])
        writer.writerows([*row[:5], "" if row[5] is None else row[5]] for row in rows)
    print("\n".join(lofo_summary(report)))
    if worst:
        print(f"worst held-out family: {worst}, AUC {scored[worst]:.3f} {per_family[worst]['roc_auc_95ci']}")
    print(f"wrote {stem}.json and {stem}-scores.csv")


if __name__ == "__main__":
    main()
