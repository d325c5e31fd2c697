"""Concept-erasure benchmark. Run: .venv/bin/python benchmarks/concepts.py  (not run by CI)

Writes benchmarks/results/concepts.{md,json}:
1. erasekit's LEACE path vs calling concept-erasure directly (same output, time ratio);
2. LEACE vs INLP on MiniLM gender embeddings: edit size, probe accuracies, fit time;
3. the closed-form edit of MiniLM's last FFN projection for 1, 10 and 100 names at once;
4. Adult: remove `sex` as an input column (without / with proxy erasure) and from an income
   MLP's penultimate representation.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from erasekit.audit.probes import linear_verdict, mean_squared_edit, probe_all
from erasekit.audit.text_edit import edit_report, row_cosines
from erasekit.concepts import INLPParams, collect_activations, erased_layers, fit_eraser, fit_layer_erasers
from erasekit.concepts.text_edit import edit_text_concepts
from erasekit.core import progress
from erasekit.core.io import atomic_write_text
from erasekit.core.provenance import library_versions
from erasekit.data.sentences import (
    NAME_ANCHOR,
    NAME_TEMPLATES_FIT,
    NAME_TEMPLATES_HELD_OUT,
    NAMES,
    UNRELATED,
    UNRELATED_PRESERVE,
    gender_sentences,
)
from erasekit.data.tables import load_adult
from erasekit.models.text_encoder import encode, load_minilm
from erasekit.pipelines.concepts import erase_table
from erasekit.report import jsonable

RESULTS = Path(__file__).parent / "results"
SHARED = Path(os.environ.get("ERASEKIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def fmt_probe(r) -> str:
    return f"{r.score:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"


def leace_vs_library(lines: list[str], record: dict) -> None:
    from concept_erasure import LeaceFitter

    rng = np.random.default_rng(0)
    n, d = 20000, 384
    z = rng.integers(0, 2, n)
    x = rng.normal(size=(n, d))
    x[:, :8] += z[:, None] * rng.normal(size=8)
    xt, zt = torch.as_tensor(x), torch.nn.functional.one_hot(torch.as_tensor(z)).double()
    ours_t, theirs_t = [], []
    for _ in range(5):  # interleaved repeats, same machine, same data
        start = time.perf_counter()
        ours = fit_eraser(x, z, "leace")(x)
        ours_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = LeaceFitter.fit(xt, zt).eraser(xt).numpy()
        theirs_t.append(time.perf_counter() - start)
    diff = float(np.abs(ours - theirs).max())
    ratio = statistics.median(ours_t) / statistics.median(theirs_t)
    record["leace_vs_library"] = {
        "max_abs_diff": diff,
        "erasekit_seconds": ours_t,
        "library_seconds": theirs_t,
        "time_ratio": ratio,
    }
    lines += [
        "## 1. erasekit LEACE vs concept-erasure directly",
        "",
        f"{n} × {d} float64 features, binary concept; fit + apply, 5 interleaved repeats (median).",
        "",
        f"- max |difference| of the erased features: {diff:.2e} (target ≤ 1e-5: {'met' if diff <= 1e-5 else 'not met'})",
        f"- time: erasekit {statistics.median(ours_t):.3f} s vs library {statistics.median(theirs_t):.3f} s, "
        f"ratio {ratio:.3f} (target ≤ 1.1: {'met' if ratio <= 1.1 else 'not met'}). erasekit adds input validation "
        "(finite check, label encoding) around the same library calls.",
        "",
    ]


def leace_vs_inlp(model, lines: list[str], record: dict) -> None:
    fit, held = gender_sentences(), gender_sentences(held_out=True)
    x_fit, x_held = encode(model, fit.sentences), encode(model, held.sentences)
    x_unrelated = encode(model, UNRELATED)
    rows = []
    for name, method, params in (
        ("original", None, None),
        ("leace", "leace", None),
        ("inlp (T=8)", "inlp", INLPParams(iterations=8)),
    ):
        if method is None:
            a, b, u, seconds, edit = x_fit, x_held, x_unrelated, 0.0, 0.0
        else:
            start = time.perf_counter()
            eraser = fit_eraser(x_fit, fit.labels, method, params)
            seconds = time.perf_counter() - start
            a, b, u = eraser(x_fit), eraser(x_held), eraser(x_unrelated)
            edit = mean_squared_edit(x_held, b)
        probes = probe_all(a, fit.labels, b, held.labels, n_boot=1000)
        cos = (
            float(row_cosines(a, x_fit).mean()),
            float(row_cosines(b, x_held).mean()),
            float(row_cosines(u, x_unrelated).mean()),
        )
        rows.append((name, probes, seconds, edit, cos))
        record.setdefault("leace_vs_inlp", []).append(
            {
                "representation": name,
                "fit_seconds": seconds,
                "mean_squared_edit": edit,
                "cosine_to_original": {"erased_fit": cos[0], "held_out": cos[1], "unrelated": cos[2]},
                "probes": {p.probe: {"score": p.score, "ci": [p.ci_low, p.ci_high], "baseline": p.baseline} for p in probes},
                "verdict": linear_verdict(probes),
            }
        )
    lines += [
        "## 2. LEACE vs INLP on MiniLM sentence embeddings (gender)",
        "",
        f"Fit on {len(fit.sentences)} template sentences ({len(set(fit.labels))} classes, 8 word pairs × 8 templates × 12 roles); "
        f"probes trained on the fitting sentences and scored on {len(held.sentences)} held-out paraphrases (new templates, new word pairs). "
        "Accuracy with bootstrap 95 % CI; majority baseline 0.5.",
        "",
        "| representation | linear probe | MLP probe | GBM probe | verdict | mean squared edit | cos to original: erased (fit) / held-out / unrelated | fit s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, probes, seconds, edit, cos in rows:
        by = {p.probe: p for p in probes}
        lines.append(
            f"| {name} | {fmt_probe(by['linear'])} | {fmt_probe(by['mlp'])} | {fmt_probe(by['gbm'])} | {linear_verdict(probes)} "
            f"| {edit:.4f} | {cos[0]:.4f} / {cos[1]:.4f} / {cos[2]:.4f} | {seconds:.3f} |"
        )
    lines.append("")


def minilm_edit(model, lines: list[str], record: dict) -> None:
    lines += [
        '## 3. Closed-form edit of MiniLM (last FFN output projection): names → "someone"',
        "",
        f"Fit templates: {NAME_TEMPLATES_FIT}; held-out paraphrase templates: {NAME_TEMPLATES_HELD_OUT}. "
        f"Preserve term: second moment of the layer's inputs over {len(UNRELATED_PRESERVE)} unrelated sentences; "
        f"unrelated evaluation sentences ({len(UNRELATED)}) are disjoint from them. Success = the edited embedding is closer "
        "to the anchor sentence's original embedding than to its own original embedding. λ = 20, preserve scale 10 (the defaults of edit_text_concepts).",
        "",
        "| concepts | cos to anchor before (fit) | after (fit) | success (fit) | cos to anchor before (held-out) | after (held-out) | success (held-out) | unrelated cos mean | unrelated cos min | cond. number | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for count in (1, 10, 100):
        start = time.perf_counter()
        edit = edit_text_concepts(model, NAMES[:count], NAME_ANCHOR, NAME_TEMPLATES_FIT, UNRELATED_PRESERVE)
        seconds = time.perf_counter() - start
        stats = edit_report(model, edit, NAME_TEMPLATES_HELD_OUT, NAMES[:count], NAME_ANCHOR, UNRELATED)
        record.setdefault("minilm_edit", []).append({"concepts": count, "seconds": seconds, **stats})
        lines.append(
            f"| {count} | {stats['fit_cos_to_anchor_before']:.3f} | {stats['fit_cos_to_anchor_after']:.3f} | {stats['fit_success_rate']:.2f} "
            f"| {stats['held_cos_to_anchor_before']:.3f} | {stats['held_cos_to_anchor_after']:.3f} | {stats['held_success_rate']:.2f} "
            f"| {stats['unrelated_cos_mean']:.4f} | {stats['unrelated_cos_min']:.4f} | {stats['condition_number']:.3g} | {seconds:.1f} |"
        )
    worst = min(r["unrelated_cos_min"] for r in record["minilm_edit"])
    lines += [
        "",
        f"Target: unrelated sentences keep cosine ≥ 0.95 to their original embeddings at 100 concepts — "
        f"lowest unrelated cosine over all runs {worst:.4f}: {'met' if worst >= 0.95 else 'not met'}.",
        "",
    ]


def adult(lines: list[str], record: dict) -> None:
    from sklearn.model_selection import train_test_split

    from erasekit.concepts.tabular import TableEncoder

    train, _ = load_adult(SHARED / "adult")
    frame = train.reset_index(drop=True)
    report, _, _ = erase_table(frame, "income", ["sex"], "leace", test_fraction=0.3, seed=0, n_boot=1000)
    rows = {}
    for row in report.probes:
        rows.setdefault(row.representation, {})[row.result.probe] = row.result
    lines += [
        "## 4. Adult: removing `sex`",
        "",
        f"UCI Adult training file ({len(frame)} rows), 70/30 split stratified by income. Income classifier: logistic regression on the "
        "encoded columns (numeric standardised, categorical one-hot); penultimate representation: a 2-layer MLP (64 units) trained on all "
        "columns. Sex probes are held-out accuracy with bootstrap 95 % CI; majority baseline = share of the majority sex in the held-out split.",
        "",
        "| representation | income accuracy | sex: linear probe | sex: MLP probe | sex: GBM probe | majority baseline | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for rep, probes in rows.items():
        lines.append(
            f"| input columns: {rep} | {report.utility[rep]:.3f} | {fmt_probe(probes['linear'])} | {fmt_probe(probes['mlp'])} "
            f"| {fmt_probe(probes['gbm'])} | {probes['linear'].baseline:.3f} | {report.verdicts[rep]} |"
        )
    record["adult_columns"] = jsonable(report)

    # (2) the model's penultimate representation
    features = frame.drop(columns=["income"])
    labels = (frame["income"] == ">50K").to_numpy().astype(np.int64)
    sex = frame["sex"].astype(str).to_numpy()
    rows_train, rows_test = train_test_split(np.arange(len(frame)), test_size=0.3, random_state=0, stratify=labels)
    encoder = TableEncoder().fit(features.iloc[rows_train])
    x = torch.as_tensor(encoder.transform(features), dtype=torch.float32)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2)
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    y = torch.as_tensor(labels)
    for _ in range(15):
        order = torch.randperm(len(rows_train))
        for start in range(0, len(order), 256):
            index = torch.as_tensor(rows_train)[order[start : start + 256]]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(x[index]), y[index]).backward()
            optimizer.step()
    net.eval()
    batches_train = [x[torch.as_tensor(rows_train)]]
    erasers = fit_layer_erasers(net, ["3"], batches_train, sex[rows_train])
    for rep, context in (("penultimate (original)", {}), ("penultimate + LEACE", erasers)):
        with erased_layers(net, context):
            acts = collect_activations(net, "3", [x]).numpy()
            with torch.no_grad():
                accuracy = float((net(x[torch.as_tensor(rows_test)]).argmax(1).numpy() == labels[rows_test]).mean())
        probes = probe_all(acts[rows_train], sex[rows_train], acts[rows_test], sex[rows_test], n_boot=1000)
        by = {p.probe: p for p in probes}
        lines.append(
            f"| {rep} | {accuracy:.3f} | {fmt_probe(by['linear'])} | {fmt_probe(by['mlp'])} | {fmt_probe(by['gbm'])} "
            f"| {by['linear'].baseline:.3f} | {linear_verdict(probes)} |"
        )
        record.setdefault("adult_penultimate", []).append(
            {
                "representation": rep,
                "income_accuracy": accuracy,
                "probes": {p.probe: [p.score, p.ci_low, p.ci_high, p.baseline] for p in probes},
            }
        )
    recon = rows.get("dropped", {})
    lines += [
        "",
        f"Reconstruction of `sex` from the kept columns (plain drop): linear {fmt_probe(recon['linear'])}, "
        f"LightGBM {fmt_probe(recon['gbm'])}; after LEACE proxy erasure: linear {fmt_probe(rows['dropped+leace']['linear'])}, "
        f"LightGBM {fmt_probe(rows['dropped+leace']['gbm'])}.",
        "",
    ]


def main() -> None:
    progress.set_enabled(os.isatty(2))
    started = time.perf_counter()
    record: dict = {"versions": library_versions(), "machine": f"{os.cpu_count()} cores, {platform.machine()}"}
    lines = [
        "# Concept erasure benchmark",
        "",
        f"Generated by `benchmarks/concepts.py` on {datetime.now(UTC):%Y-%m-%d %H:%M UTC}; "
        f"{os.cpu_count()} CPU cores, no GPU; " + ", ".join(f"{k} {v}" for k, v in library_versions().items()) + ".",
        "",
    ]
    leace_vs_library(lines, record)
    model = load_minilm()
    leace_vs_inlp(model, lines, record)
    minilm_edit(model, lines, record)
    adult(lines, record)
    lines.append(f"Total run time {(time.perf_counter() - started) / 60:.1f} min.")
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "concepts.json", json.dumps(record, indent=2, default=float) + "\n")
    atomic_write_text(RESULTS / "concepts.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
