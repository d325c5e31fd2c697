"""SISA benchmark on MNIST: accuracy and deletion cost against one monolithic model.

Run:  .venv/bin/python benchmarks/sisa_mnist.py [--mnist ../shared/data/mnist]
Writes benchmarks/results/sisa_mnist.{md,json}. Not run by CI (≈ 15–25 min on 2 cores).

For S ∈ {1, 5, 10, 20} shards and R ∈ {1, 5} slices: train a SISA model directory on the 60,000
training images (the same recipe as the monolithic model: E epochs, each slice stage ⌈2E/(R+1)⌉),
measure the aggregated test accuracy, then process through the ledger (SQLite) one deletion
request for one random example, and then one batch of 100 requests for 100 random examples.
The reference is a full retrain: the monolithic MLP trained from scratch on the remaining data
with the same recipe (default torch threads; SISA shard jobs use one thread each). The same two
deletions are then repeated on a copy of the freshly trained directory with the Ray backend
(2 local workers, Ray started once beforehand so its start-up is not charged to a deletion).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from erasekit.audit.metrics import accuracy, predict_logits
from erasekit.core import progress
from erasekit.core.io import atomic_write_text
from erasekit.core.provenance import library_versions
from erasekit.data import load_mnist
from erasekit.ledger import DataSource, Execution, ShardConfig, ShardedModel, train_sisa
from erasekit.models import ModelSpec
from erasekit.training import Recipe, train

RESULTS = Path(__file__).parent / "results"
RECIPE = Recipe(epochs=10, batch_size=128, lr=0.05)
SHARDS = (1, 5, 10, 20)
SLICES = (1, 5)
BATCH = 100
SEED = 0


def _deletions(sharded: ShardedModel, execution: Execution, rng: np.random.Generator) -> dict:
    ids = sharded.assignment.example_ids
    one = int(rng.choice(ids))
    sharded.add_request([one], reason="benchmark: one deletion")
    single = sharded.process(execution)
    batch_ids = [int(i) for i in rng.choice(ids, size=BATCH, replace=False) if int(i) != one][: BATCH - 1] + [one]
    for example_id in batch_ids:
        sharded.add_request([example_id], reason="benchmark: batch")
    batch = sharded.process(execution)
    return {
        "one_seconds": single.seconds,
        "one_shards_retrained": single.retrained_shards,
        "batch_seconds": batch.seconds,
        "batch_shards_retrained": batch.retrained_shards,
        "batch_requests": len(batch.done_request_ids),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist")
    parser.add_argument("--no-ray", action="store_true", help="Skip the Ray backend runs.")
    parser.add_argument("--subset", type=int, default=None, help="Train on N images only (a quick check of the script).")
    parser.add_argument("--out", type=Path, default=RESULTS, help="Directory for the results.")
    parser.add_argument("--name", default="sisa_mnist", help="Results file name (NAME.md, NAME.json).")
    parser.add_argument("--arch", choices=["mlp", "cnn"], default="mlp", help="Architecture of the model and every shard.")
    parser.add_argument(
        "--render", type=Path, default=None, help="Only re-render NAME.md from an existing results JSON (no training)."
    )
    parser.add_argument("--shards", default=",".join(map(str, SHARDS)), help="Comma-separated S values.")
    parser.add_argument("--slices", default=",".join(map(str, SLICES)), help="Comma-separated R values.")
    args = parser.parse_args()
    progress.set_enabled(False)
    if args.render is not None:
        result = json.loads(args.render.read_text())
        atomic_write_text(args.out / f"{args.name}.md", _markdown(result, "ray_one_seconds" in result["rows"][0]))
        return
    splits = load_mnist(args.mnist)
    if args.subset:
        splits = splits.subsample_train(args.subset)
    spec = ModelSpec(args.arch, splits.input_shape, splits.num_classes)
    shard_values = tuple(int(v) for v in args.shards.split(","))
    slice_values = tuple(int(v) for v in args.slices.split(","))
    source = DataSource.absolute(f"mnist:{args.mnist}", subset=args.subset)

    # the reference: one monolithic model, and its full retrain after one deletion
    start = time.perf_counter()
    mono = train(spec.build(seed=SEED), splits.train, RECIPE, seed=SEED, description="monolithic")
    mono_train_seconds = time.perf_counter() - start
    mono_acc = accuracy(*predict_logits(mono, splits.test))
    keep = np.delete(np.arange(len(splits.train)), len(splits.train) // 2)
    start = time.perf_counter()
    train(spec.build(seed=SEED), splits.train.subset(keep), RECIPE, seed=SEED, description="full retrain")
    full_retrain_seconds = time.perf_counter() - start
    print(
        f"monolithic: test acc {100 * mono_acc:.2f} %, train {mono_train_seconds:.1f} s, "
        f"full retrain {full_retrain_seconds:.1f} s",
        flush=True,
    )

    ray_ready = False
    if not args.no_ray:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray_ready = True

    rows = []
    work = Path(tempfile.mkdtemp(prefix="sisa-bench-"))
    try:
        for slices in slice_values:
            for shards in shard_values:
                config = ShardConfig(spec=spec, recipe=RECIPE, seed=SEED, aggregation="mean")
                directory = work / f"s{shards}-r{slices}"
                trained = train_sisa(splits, source, config, shards, slices, directory, None, Execution(workers=2))
                if ray_ready:
                    shutil.copytree(directory, work / f"{directory.name}-ray")
                with ShardedModel.open(directory, splits=splits) as sharded:
                    vote = ShardConfig(spec=spec, recipe=RECIPE, seed=SEED, aggregation="vote")
                    vote_acc = _vote_accuracy(sharded, vote, splits)
                    local = _deletions(sharded, Execution(workers=2), np.random.default_rng(shards * 100 + slices))
                row = {
                    "shards": shards,
                    "slices": slices,
                    "train_seconds": trained.seconds,
                    "test_acc_mean": trained.test_accuracy,
                    "test_acc_vote": vote_acc,
                    "acc_drop_points": 100 * (mono_acc - trained.test_accuracy),
                    **{f"process_{k}": v for k, v in local.items()},
                    "speedup_one": full_retrain_seconds / local["one_seconds"],
                    "speedup_batch": full_retrain_seconds / local["batch_seconds"],
                }
                if ray_ready:
                    with ShardedModel.open(work / f"{directory.name}-ray", splits=splits) as sharded:
                        remote = _deletions(sharded, Execution("ray", workers=2), np.random.default_rng(shards * 100 + slices))
                    row.update({f"ray_{k}": v for k, v in remote.items()})
                    row["ray_speedup_one"] = full_retrain_seconds / remote["one_seconds"]
                    row["ray_speedup_batch"] = full_retrain_seconds / remote["batch_seconds"]
                rows.append(row)
                print(json.dumps(row), flush=True)
                shutil.rmtree(directory, ignore_errors=True)
                shutil.rmtree(work / f"{directory.name}-ray", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if ray_ready:
            import ray

            ray.shutdown()

    result = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "versions": library_versions(),
        "recipe": RECIPE.to_dict(),
        "architecture": spec.to_dict(),
        "seed": SEED,
        "monolithic": {"test_acc": mono_acc, "train_seconds": mono_train_seconds, "full_retrain_seconds": full_retrain_seconds},
        "rows": rows,
    }
    result["subset"] = args.subset
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / f"{args.name}.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(args.out / f"{args.name}.md", _markdown(result, ray_ready))
    print(f"wrote {args.out / (args.name + '.md')}")


def _vote_accuracy(sharded: ShardedModel, vote: ShardConfig, splits) -> float:
    predictor = sharded.predictor()
    predictor.aggregation = "vote"
    return accuracy(*predict_logits(predictor, splits.test))


def _markdown(result: dict, ray_ready: bool) -> str:
    mono = result["monolithic"]
    lines = [
        "# SISA on MNIST: accuracy and deletion cost vs one monolithic model",
        "",
        f"Generated by `benchmarks/sisa_mnist.py` on {result['created_at']} — {result['machine']['platform']}, "
        f"{result['machine']['cpus']} CPUs, torch {result['versions'].get('torch', '?')}.",
        f"Recipe: {result['architecture']['architecture'].upper()} (hidden {result['architecture']['hidden']}), {result['recipe']['epochs']} epochs, batch "
        f"{result['recipe']['batch_size']}, SGD lr {result['recipe']['lr']} (cosine), seed {result['seed']}. "
        "Each slice stage trains ⌈2E/(R+1)⌉ epochs on the union of slices so far.",
        "",
        f"**Monolithic model:** test accuracy {100 * mono['test_acc']:.2f} %, training {mono['train_seconds']:.1f} s. "
        f"**Full retrain** after one deletion (the reference for every speed-up): {mono['full_retrain_seconds']:.1f} s.",
        "",
        "Deletion times are `ShardedModel.process` wall-clock with the data in memory: scheduling, retraining the "
        "affected shards from the checkpoint before the affected slice (local process pool, 2 workers; a single "
        "shard runs in-process), writing hashed checkpoints and committing the version to the SQLite ledger. "
        f"The batch is {BATCH} requests of one random example each, processed as one batch.",
        "",
        "| S | R | SISA train s | test acc (mean) | test acc (vote) | drop vs mono (pts) | one deletion s | shards | speed-up | batch of 100 s | shards | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['shards']} | {r['slices']} | {r['train_seconds']:.1f} | {100 * r['test_acc_mean']:.2f} | "
            f"{100 * r['test_acc_vote']:.2f} | {r['acc_drop_points']:+.2f} | {r['process_one_seconds']:.2f} | "
            f"{r['process_one_shards_retrained']} | {r['speedup_one']:.1f}× | {r['process_batch_seconds']:.1f} | "
            f"{r['process_batch_shards_retrained']} | {r['speedup_batch']:.2f}× |"
        )
    if ray_ready:
        lines += [
            "",
            "## Ray backend (2 local workers)",
            "",
            "Same deletions on a copy of each freshly trained directory; every retraining is a Ray task (also a "
            "single shard), so the single-deletion time includes shipping the shard's data to a Ray worker.",
            "",
            "| S | R | one deletion s | speed-up | batch of 100 s | speed-up |",
            "|---|---|---|---|---|---|",
        ]
        for r in result["rows"]:
            lines.append(
                f"| {r['shards']} | {r['slices']} | {r['ray_one_seconds']:.2f} | {r['ray_speedup_one']:.1f}× | "
                f"{r['ray_batch_seconds']:.1f} | {r['ray_speedup_batch']:.2f}× |"
            )
    by = {(r["shards"], r["slices"]): r for r in result["rows"]}
    # the retrain and the first training do the same work; the faster of the two is the conservative reference
    fastest = min(mono["train_seconds"], mono["full_retrain_seconds"])
    lines += [
        "",
        "## Targets",
        "",
        f"Speed-ups below are against the full retrain ({mono['full_retrain_seconds']:.1f} s) and, in brackets, "
        f"against the faster of the two monolithic runs ({fastest:.1f} s), which do the same work.",
        "",
    ]
    for slices in sorted({r["slices"] for r in result["rows"]}):
        if (10, slices) in by:
            r = by[(10, slices)]
            conservative = fastest / r["process_one_seconds"]
            verdict = "met" if min(r["speedup_one"], conservative) >= 8 else "NOT met"
            lines.append(
                f"- One deletion at S = 10, R = {slices}: {r['speedup_one']:.1f}× ({conservative:.1f}×) faster "
                f"than a full retrain (target ≥ 8×: {verdict})."
            )
    for slices in sorted({r["slices"] for r in result["rows"]}):
        if (5, slices) in by:
            r = by[(5, slices)]
            verdict = "met" if r["acc_drop_points"] <= 1.5 else "NOT met"
            lines.append(
                f"- Test accuracy at S = 5, R = {slices}: {100 * r['test_acc_mean']:.2f} % vs "
                f"{100 * mono['test_acc']:.2f} % monolithic, {r['acc_drop_points']:.2f} points lower "
                f"(target ≤ 1.5: {verdict})."
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
