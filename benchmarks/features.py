"""Feature-selection benchmark (ERASE protocol). Run: .venv/bin/python benchmarks/features.py  (not run by CI)

Writes benchmarks/results/features.{md,json} and features_<dataset>.html:
1. every registered field ranker on UCI Adult (income) and the synthetic CTR table with known
   relevant fields, 3 seeds: test AUC / logloss of a DeepFM retrained from scratch on the top-k
   fields for each k, AUKC, precision@k (synthetic), selection seconds and peak memory, and the
   mask / ROAR / KAR / impute removal comparison;
2. cost at equal k: OptFS search vs one backbone training, vs backward elimination (`removal`)
   and vs scikit-learn's SequentialFeatureSelector (backward, same DeepFM as estimator);
3. QuickSelection on sparse CSR tensors vs the identical network run dense (mask × matrix),
   each in a fresh process so peak RSS is its own.
Timings are ratios inside one run on one machine. Set FEATURES_BENCH_SEEDS=1 (and FEATURES_BENCH_METHODS=gbdt,optfs,removal) for a quick pass.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import resource
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from erasekit.core import progress
from erasekit.core.io import atomic_write_text
from erasekit.core.provenance import library_versions
from erasekit.data.ctr import make_synthetic_ctr, prepare_table
from erasekit.data.tables import load_adult
from erasekit.features import available_selectors
from erasekit.models.ctr import CTRClassifier, CTRRecipe, CTRSpec
from erasekit.pipelines.selection import run_selection_bench, train_on
from erasekit.report import jsonable, to_html

RESULTS = Path(__file__).parent / "results"
SHARED = Path(os.environ.get("ERASEKIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SEEDS = tuple(range(int(os.environ.get("FEATURES_BENCH_SEEDS", "3"))))
SPEC = CTRSpec("deepfm", embed_dim=8)
RECIPE = CTRRecipe(max_epochs=5, batch_size=512, lr=1e-3)
EQUAL_K = 6


def datasets():
    train, test = load_adult(SHARED / "adult")
    adult = prepare_table(train, "income", test_frame=test, log_numeric=True, seed=0)
    synthetic = make_synthetic_ctr(n_rows=20000, seed=0)
    synth = prepare_table(synthetic.frame, synthetic.target, seed=0)
    return [
        ("adult", "UCI Adult (income)", adult, None, (2, 4, 6, 8, 10, 12)),
        ("synthetic", "synthetic CTR (20k rows; 6 relevant, 3 proxies, 9 noise)", synth, synthetic.relevant, (2, 4, 6, 8, 12)),
    ]


def sklearn_sequential_seconds(prepared, k: int, seed: int) -> tuple[float, tuple[str, ...]]:
    """scikit-learn's backward SequentialFeatureSelector with the same DeepFM, one train/validation split."""
    from sklearn.feature_selection import SequentialFeatureSelector

    X = np.vstack([prepared.train.matrix(), prepared.valid.matrix()])
    y = np.concatenate([prepared.train.labels, prepared.valid.labels])
    split = [(np.arange(len(prepared.train)), np.arange(len(prepared.train), len(X)))]
    estimator = CTRClassifier(
        "deepfm",
        categorical=tuple(range(prepared.train.n_categorical)),
        max_epochs=RECIPE.max_epochs,
        batch_size=RECIPE.batch_size,
        lr=RECIPE.lr,
        validation_fraction=0.1,
        random_state=seed,
    )
    start = time.perf_counter()
    selector = SequentialFeatureSelector(estimator, n_features_to_select=k, direction="backward", scoring="roc_auc", cv=split)
    selector.fit(X, y)
    names = tuple(n for n, keep in zip(prepared.train.names, selector.get_support()) if keep)
    return time.perf_counter() - start, names


def _quickselection_child(queue, X, dense: bool, epochs: int) -> None:
    from erasekit.features import QuickSelection

    start = time.perf_counter()
    selector = QuickSelection(k=10, epochs=epochs, dense=dense, random_state=0).fit(X)
    seconds = time.perf_counter() - start
    queue.put(
        (
            seconds,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            selector.ranking_.tolist(),
            float(selector.reconstruction_mse_),
        )
    )


def quickselection_sparse_vs_dense(name: str, X: np.ndarray, epochs: int, relevant_columns=None) -> dict:
    context = multiprocessing.get_context("spawn")
    rows = {}
    for dense in (False, True, False, True):  # interleaved twice
        queue = context.Queue()
        child = context.Process(target=_quickselection_child, args=(queue, X, dense, epochs))
        child.start()
        seconds, peak_mb, ranking, mse = queue.get()
        child.join()
        entry = rows.setdefault(
            "dense" if dense else "sparse", {"seconds": [], "peak_rss_mb": [], "ranking": ranking, "mse": mse}
        )
        entry["seconds"].append(seconds)
        entry["peak_rss_mb"].append(peak_mb)
    result = {"dataset": name, "inputs": int(X.shape[1]), "rows": int(X.shape[0]), "epochs": epochs}
    for kind, entry in rows.items():
        result[kind] = {
            "seconds": float(np.median(entry["seconds"])),
            "peak_rss_mb": float(np.median(entry["peak_rss_mb"])),
            "mse": entry["mse"],
        }
    result["same_ranking"] = rows["sparse"]["ranking"] == rows["dense"]["ranking"]
    if relevant_columns is not None:
        top = np.argsort(rows["sparse"]["ranking"])[: len(relevant_columns)]
        result["precision_relevant"] = len(set(top.tolist()) & set(relevant_columns)) / len(relevant_columns)
    return result


def main() -> None:
    progress.set_enabled(False)
    RESULTS.mkdir(exist_ok=True)
    started = time.perf_counter()
    record: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "versions": library_versions(),
        "seeds": list(SEEDS),
        "spec": SPEC.__dict__,
        "recipe": RECIPE.to_dict(),
        "datasets": {},
        "equal_k": {},
        "quickselection": [],
    }
    lines = [
        "# Feature selection benchmark (ERASE protocol)",
        "",
        f"{record['date']} · {record['machine']} · erasekit {record['versions']['erasekit']} · torch {record['versions']['torch']} · "
        f"seeds {list(SEEDS)} · backbone DeepFM (embedding 8, hidden 64-32), Adam lr 1e-3, batch 512, ≤ {RECIPE.max_epochs} epochs "
        "with early stopping on validation logloss. Generated by `benchmarks/features.py`.",
        "",
    ]
    methods = tuple(os.environ.get("FEATURES_BENCH_METHODS", ",".join(available_selectors())).split(","))
    for key, title, prepared, relevant, ks in datasets():
        print(f"[{time.perf_counter() - started:7.0f}s] {key}: {len(methods)} methods × {len(SEEDS)} seeds", flush=True)
        report = run_selection_bench(prepared, methods, ks, SEEDS, spec=SPEC, recipe=RECIPE, relevant=relevant, dataset=title)
        atomic_write_text(RESULTS / f"features_{key}.html", to_html(report))
        record["datasets"][key] = jsonable(report)
        summary = report.summary
        backbone = float(np.mean(list(report.backbone_seconds.values())))
        full_auc = float(np.mean([s.auc for s in report.full_model.values()]))
        lines += [
            f"## {title}",
            "",
            f"{len(prepared.train)} train / {len(prepared.valid)} validation / {len(prepared.test)} test rows, "
            f"{len(prepared.train.names)} fields. All fields: test AUC {full_auc:.4f}; one backbone training {backbone:.1f} s.",
            "",
        ]
        header = "| method | family | AUKC | " + " | ".join(f"AUC@{k}" for k in ks)
        header += (" | " + " | ".join(f"P@{k}" for k in ks)) if relevant else ""
        header += " | select s | × backbone | peak MiB |"
        lines += [header, "|" + "---|" * (header.count("|") - 1)]
        for row in sorted(summary, key=lambda r: -r.aukc.mean):
            cells = [row.method, row.family, f"{row.aukc.mean:.4f} ± {row.aukc.std:.4f}"]
            cells += [f"{row.auc[k].mean:.4f}" for k in ks]
            if relevant:
                cells += [f"{row.precision_at_k[k].mean:.2f}" for k in ks]
            cells += [f"{row.seconds.mean:.1f}", f"{row.seconds.mean / backbone:.2f}", f"{row.peak_memory_mb.mean:.0f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines += [
            "",
            "Logloss (mean over seeds; lower is better):",
            "",
            "| method | " + " | ".join(f"logloss@{k}" for k in ks) + " |",
            "|---|" + "---|" * len(ks),
        ]
        for row in sorted(summary, key=lambda r: -r.aukc.mean):
            lines.append(f"| {row.method} | " + " | ".join(f"{row.logloss[k].mean:.4f}" for k in ks) + " |")
        lines += [
            "",
            "Removing each method's top-3 fields (test AUC, mean over seeds): mask at inference vs ROAR retrain vs "
            "impute from the other fields; KAR = retrained on those 3 alone.",
            "",
            "| method | top-3 (seed 0) | all | mask | ROAR | impute | KAR |",
            "|---|---|---|---|---|---|---|",
        ]
        for method in methods:
            rows = [r for r in report.removals if r.method == method]
            mean = lambda attr, rows=rows: np.mean([getattr(r, attr) for r in rows])  # noqa: E731
            lines.append(
                f"| {method} | {', '.join(rows[0].fields)} | {mean('full_auc'):.4f} | {mean('mask_auc'):.4f} | "
                f"{mean('roar_auc'):.4f} | {mean('impute_auc'):.4f} | {mean('kar_auc'):.4f} |"
            )

        # Cost at equal k: OptFS vs exact references.
        optfs_runs = [r for r in report.runs if r.selection.method == "optfs"]
        removal_runs = [r for r in report.runs if r.selection.method == "removal"]
        optfs_seconds = float(np.mean([r.selection.seconds for r in optfs_runs]))
        removal_at_k = float(np.mean([r.selection.extra[f"seconds_at_k{EQUAL_K}"] for r in removal_runs]))
        auc_at = lambda runs: float(np.mean([p.auc for r in runs for p in r.curve if p.k == EQUAL_K]))  # noqa: E731
        print(f"[{time.perf_counter() - started:7.0f}s] {key}: sklearn SequentialFeatureSelector", flush=True)
        sfs_seconds, sfs_fields = sklearn_sequential_seconds(prepared, EQUAL_K, 0)
        sfs_auc = train_on(prepared, sfs_fields, SPEC, RECIPE, 0).auc
        equal = {
            "k": EQUAL_K,
            "optfs_seconds": optfs_seconds,
            "backbone_seconds": backbone,
            "removal_seconds_at_k": removal_at_k,
            "sklearn_sfs_seconds": sfs_seconds,
            "optfs_auc": auc_at(optfs_runs),
            "removal_auc": auc_at(removal_runs),
            "sklearn_sfs_auc": sfs_auc,
            "sklearn_sfs_fields": list(sfs_fields),
        }
        record["equal_k"][key] = equal
        lines += [
            "",
            f"Cost at k = {EQUAL_K}: OptFS search {optfs_seconds:.1f} s = **{optfs_seconds / backbone:.2f}× one backbone training** "
            f"(target ≤ 2); backward elimination reached k = {EQUAL_K} after {removal_at_k:.0f} s "
            f"(**{removal_at_k / optfs_seconds:.0f}× OptFS**; target ≥ 10), scikit-learn's SequentialFeatureSelector "
            f"(backward, same DeepFM, seed 0) {sfs_seconds:.0f} s (**{sfs_seconds / optfs_seconds:.0f}×**). "
            f"Test AUC at k = {EQUAL_K}: OptFS {equal['optfs_auc']:.4f}, removal {equal['removal_auc']:.4f} "
            f"(gap {equal['optfs_auc'] - equal['removal_auc']:+.4f}; target within 0.005), SequentialFeatureSelector {sfs_auc:.4f}.",
            "",
        ]
        atomic_write_text(RESULTS / "features.md", "\n".join(lines) + "\n")

    print(f"[{time.perf_counter() - started:7.0f}s] QuickSelection sparse vs dense", flush=True)
    adult = datasets()[0][2]
    adult_hot = adult.train.one_hot()[0]
    wide = make_synthetic_ctr(n_rows=5000, n_irrelevant=30, cardinality=150, seed=0)
    wide_prepared = prepare_table(wide.frame, wide.target, seed=0)
    wide_hot = wide_prepared.train.one_hot()[0]
    qs = [
        quickselection_sparse_vs_dense("Adult one-hot", adult_hot[:10000], epochs=5),
        quickselection_sparse_vs_dense("wide synthetic one-hot", wide_hot, epochs=5),
    ]
    record["quickselection"] = qs
    lines += [
        "## QuickSelection: sparse CSR tensors vs the same network dense",
        "",
        "Same seed, same topology evolution, 1000 hidden units, ε = 13, 5 epochs; each run in a fresh process "
        "(peak RSS is the whole process, including torch), median of 2 interleaved runs.",
        "",
        "| inputs | rows | connections/layer | sparse s | dense s | time ratio dense/sparse | sparse peak MiB | dense peak MiB | memory ratio | same ranking |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in qs:
        connections = min(row["inputs"] * 1000, int(round(13 * (row["inputs"] + 1000))))
        lines.append(
            f"| {row['inputs']} ({row['dataset']}) | {row['rows']} | {connections} | {row['sparse']['seconds']:.1f} | "
            f"{row['dense']['seconds']:.1f} | {row['dense']['seconds'] / row['sparse']['seconds']:.2f} | "
            f"{row['sparse']['peak_rss_mb']:.0f} | {row['dense']['peak_rss_mb']:.0f} | "
            f"{row['dense']['peak_rss_mb'] / row['sparse']['peak_rss_mb']:.2f} | {row['same_ranking']} |"
        )
    record["total_seconds"] = time.perf_counter() - started
    lines += ["", f"Total run time {record['total_seconds'] / 60:.0f} min."]
    atomic_write_text(RESULTS / "features.md", "\n".join(lines) + "\n")
    atomic_write_text(RESULTS / "features.json", json.dumps(record, indent=2, default=str) + "\n")
    print(f"[{time.perf_counter() - started:7.0f}s] done", flush=True)


if __name__ == "__main__":
    main()
