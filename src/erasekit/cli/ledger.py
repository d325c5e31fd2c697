"""``erasekit sisa`` (sharded training), ``erasekit requests`` (the deletion-request ledger) and
``erasekit models`` (version history). Every command takes ``--db URL``; the default is the
SQLite file ``ledger.sqlite`` inside the model directory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from rich.table import Table

from erasekit.cli.options import (
    CLASSIFICATION_DATA_HELP,
    SUBSET_HELP,
    check_architecture,
    load_splits,
    make_recipe,
    out,
    recipe_options,
    write_json,
)

DB_HELP = "Ledger database URL: sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB (default: DIR/ledger.sqlite)."
MODEL_DIR_HELP = "A SISA model directory made by `erasekit sisa train`."


def _db_option(fn):
    return click.option("--db", default=None, help=DB_HELP)(fn)


def _model_dir_option(fn):
    return click.option("--model-dir", type=click.Path(path_type=Path), required=True, help=MODEL_DIR_HELP)(fn)


def _execution_options(fn):
    fn = click.option("--ray-address", default=None, help="Address of an existing Ray cluster (with --backend ray).")(fn)
    fn = click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=None,
        help="Parallel shard retrainings (default: the number of CPU cores).",
    )(fn)
    fn = click.option(
        "--backend",
        type=click.Choice(["process", "ray"]),
        default="process",
        help="process: a local process pool; ray: Ray tasks (pip install 'erasekit[ray]').",
    )(fn)
    return fn


def _execution(backend: str, workers: int | None, ray_address: str | None):
    from erasekit.ledger import Execution

    return Execution(backend=backend, workers=workers, ray_address=ray_address)  # type: ignore[arg-type]


def _open(model_dir: Path, db: str | None, data: str | None = None, target: str | None = None, subset: int | None = None):
    from erasekit.ledger import ShardedModel

    splits = load_splits(data, target, subset) if data else None
    return ShardedModel.open(model_dir, db, splits=splits)


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# -- erasekit sisa ------------------------------------------------------------------------
@click.group()
def sisa() -> None:
    """Sharded exact unlearning (SISA): train S shard models over R slices each.

    \b
    erasekit sisa train --data digits --shards 5 --slices 2 --out sisa-digits
    erasekit requests add --model-dir sisa-digits --id 17 --reason "GDPR art. 17"
    erasekit requests process --model-dir sisa-digits
    """


@sisa.command("train")
@click.option("--data", required=True, help=CLASSIFICATION_DATA_HELP)
@click.option("--model", default="mlp", help="Architecture of every shard model: mlp | cnn.")
@click.option("--shards", type=click.IntRange(min=1), default=5, help="S: disjoint shards, one model each.")
@click.option("--slices", type=click.IntRange(min=1), default=1, help="R: slices per shard, a checkpoint after each.")
@click.option(
    "--aggregation",
    type=click.Choice(["mean", "vote"]),
    default="mean",
    help="Combine shard models by mean probability or majority vote.",
)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="New directory for the model.")
@click.option("--target", default=None, help="Label column of csv:/parquet: data.")
@click.option("--subset", type=click.IntRange(min=1), default=None, help=SUBSET_HELP)
@recipe_options
@click.option("--seed", type=int, default=0, help="Seed for the assignment, initialisation and shuffling.")
@_execution_options
@_db_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sisa_train(
    data,
    model,
    shards,
    slices,
    aggregation,
    out_dir,
    target,
    subset,
    epochs,
    batch_size,
    lr,
    seed,
    backend,
    workers,
    ray_address,
    db,
    as_json,
) -> None:
    """Train a sharded model into a new directory and register it in the ledger (version 1).

    --epochs is E of the equivalent single model; each slice stage trains ⌈2E/(R+1)⌉ epochs.
    """
    from erasekit.core.io import check_writable_dir
    from erasekit.ledger import DataSource, ShardConfig, train_sisa
    from erasekit.models import ModelSpec

    check_architecture(model)
    check_writable_dir(out_dir)  # before loading any data
    execution = _execution(backend, workers, ray_address)
    recipe = make_recipe(epochs, batch_size, lr)
    splits = load_splits(data, target, subset)
    spec = ModelSpec(model, splits.input_shape, splits.num_classes)
    config = ShardConfig(spec=spec, recipe=recipe, seed=seed, aggregation=aggregation)
    result = train_sisa(splits, DataSource.absolute(data, target, subset), config, shards, slices, out_dir, db, execution)
    if as_json:
        write_json(
            {
                "directory": str(result.directory),
                "model_id": result.model_id,
                "version": result.version.version,
                "seconds": result.seconds,
                "train_accuracy": result.train_accuracy,
                "test_accuracy": result.test_accuracy,
                "db": result.db,
            }
        )
        return
    out.print(
        f"trained {shards} shards × {slices} slices of {model} on {splits.name} in {result.seconds:.1f} s: "
        f"train acc {100 * result.train_accuracy:.2f} %, test acc {100 * result.test_accuracy:.2f} % "
        f"({aggregation} of shard models)"
    )
    out.print(f"wrote {result.directory}; ledger {result.db} at version 1")


@sisa.command("status")
@_model_dir_option
@_db_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def sisa_status(model_dir, db, as_json) -> None:
    """Current version, pending requests and checkpoint integrity; exits 1 when a checkpoint is corrupted (for monitoring)."""
    with _open(model_dir, db) as sharded:
        current = sharded.current_version()
        counts = sharded.ledger.count_requests(sharded.model_id)
        corrupt = sharded.verify()
        manifest = sharded.manifest
        status = {
            "model_id": sharded.model_id,
            "data": sharded.source.label(),
            "shards": manifest.num_shards,
            "slices": manifest.num_slices,
            "aggregation": manifest.config.aggregation,
            "current_version": current.version,
            "removed_examples": len(sharded.ledger.deleted_ids(sharded.model_id)),
            "requests": counts,
            "corrupted_checkpoints": [ref.relative_path() for ref in corrupt],
        }
    if as_json:
        write_json(status)
        if corrupt:
            raise click.exceptions.Exit(1)
        return
    out.print(
        f"model {status['model_id']} on {status['data']}: {status['shards']} shards × {status['slices']} slices "
        f"({status['aggregation']}), version {status['current_version']}, "
        f"{status['removed_examples']} examples removed"
    )
    out.print("requests: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"))
    if corrupt:
        out.print(f"[red]{len(corrupt)} corrupted checkpoint(s)[/red]: run `erasekit sisa repair --model-dir {model_dir}`")
        raise click.exceptions.Exit(1)
    out.print("every checkpoint of the current version passes its hash check")


@sisa.command("repair")
@_model_dir_option
@_db_option
@click.option("--data", default=None, help="The training data, if it moved since `sisa train` (checked by hash).")
@click.option("--target", default=None, help="Label column of csv:/parquet: data.")
@click.option("--subset", type=click.IntRange(min=1), default=None, help=SUBSET_HELP)
@_execution_options
def sisa_repair(model_dir, db, data, target, subset, backend, workers, ray_address) -> None:
    """Rebuild shards whose checkpoints are missing or corrupted (from the last good checkpoint)."""
    execution = _execution(backend, workers, ray_address)
    with _open(model_dir, db, data, target, subset) as sharded:
        version = sharded.repair(execution)
    if version is None:
        out.print("every checkpoint passes its hash check; nothing to repair")
    else:
        out.print(f"rebuilt shard(s) {', '.join(map(str, version.retrained_shards))}: version {version.version}")


# -- erasekit requests --------------------------------------------------------------------
@click.group()
def requests() -> None:
    """File, list and process deletion requests for a SISA model."""


@requests.command("add")
@_model_dir_option
@click.option("--id", "ids", type=int, multiple=True, help="Example id (source row number) to delete; repeatable.")
@click.option(
    "--ids",
    "ids_file",
    type=click.Path(path_type=Path),
    default=None,
    help="File of example ids (whitespace or comma separated; # comments).",
)
@click.option(
    "--requests-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Many requests at once, one per line: ids separated by spaces or commas, then optionally '| reason'. One transaction.",
)
@click.option("--reason", default="", help="Why (recorded in the ledger), e.g. 'GDPR art. 17 request #4411'.")
@_db_option
@click.option("--json", "as_json", is_flag=True, help="Print the recorded request(s) as JSON.")
def requests_add(model_dir, ids, ids_file, requests_file, reason, db, as_json) -> None:
    """Record a deletion request (status: received), or many with --requests-file. Nothing is retrained until `requests process`."""
    from erasekit.core.errors import LedgerError
    from erasekit.data.forget import read_index_file, read_request_file

    if requests_file is not None:
        if ids or ids_file is not None:
            raise LedgerError("give either --requests-file (many requests) or --id/--ids (one request), not both")
        batch = read_request_file(requests_file)
        batch = [(example_ids, line_reason or reason) for example_ids, line_reason in batch]
        with _open(model_dir, db) as sharded:
            recorded = sharded.add_requests(batch)
        if as_json:
            write_json([r.to_dict() for r in recorded])
            return
        out.print(
            f"{len(recorded)} requests received (ids {recorded[0].id}..{recorded[-1].id}, "
            f"{sum(len(r.example_ids) for r in recorded)} examples); run `erasekit requests process --model-dir {model_dir}`"
        )
        return
    example_ids = list(ids)
    if ids_file is not None:
        example_ids += [int(i) for i in read_index_file(ids_file)]
    if not example_ids:
        raise LedgerError("give the examples to delete with --id N (repeatable) or --ids FILE")
    with _open(model_dir, db) as sharded:
        request = sharded.add_request(example_ids, reason)
    if as_json:
        write_json(request.to_dict())
        return
    out.print(
        f"request {request.id}: {len(request.example_ids)} example(s) received; "
        f"run `erasekit requests process --model-dir {model_dir}` to apply it"
    )


def _request_rows(requests_list) -> list[dict]:
    now = datetime.now(UTC)
    return [{**r.to_dict(), "pending_seconds": r.pending_seconds(now)} for r in requests_list]


@requests.command("list")
@_model_dir_option
@click.option(
    "--status", type=click.Choice(["received", "scheduled", "done", "failed"]), default=None, help="Only requests in this state."
)
@_db_option
@click.option("--json", "as_json", is_flag=True, help="Print the requests as a JSON list.")
def requests_list(model_dir, status, db, as_json) -> None:
    """List requests: status, when received and done, which version applied them."""
    with _open(model_dir, db) as sharded:
        rows = _request_rows(sharded.requests(status))
    if as_json:
        write_json(rows)
        return
    table = Table(title=f"deletion requests — {model_dir}", title_justify="left")
    for header in ("id", "status", "examples", "received", "waited", "done", "version", "reason"):
        table.add_column(header, justify="right" if header in ("id", "examples", "version") else "left")
    for r in rows:
        shown = ", ".join(map(str, r["example_ids"][:5])) + (" …" if len(r["example_ids"]) > 5 else "")
        table.add_row(
            str(r["id"]),
            r["status"],
            shown,
            r["received_at"],
            _ago(r["pending_seconds"]),
            r["done_at"] or "—",
            "—" if r["model_version"] is None else str(r["model_version"]),
            r["error"] or r["reason"],
        )
    out.print(table)


@requests.command("process")
@_model_dir_option
@_db_option
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="At most this many requests per retraining batch (default: all pending).",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    default=0.0,
    help="If another worker is processing this model, wait up to this many seconds for it.",
)
@click.option(
    "--lease",
    "lease_seconds",
    type=click.FloatRange(min=1),
    default=600.0,
    help="Lock lease; a worker that stops renewing it (crashed on another host) loses it after this long.",
)
@click.option(
    "--fault-retries",
    type=click.IntRange(min=0),
    default=2,
    help="When the disk is full or not writable, retry the batch this many times before giving up (requests stay pending).",
)
@click.option(
    "--backoff",
    "backoff_seconds",
    type=click.FloatRange(min=0),
    default=5.0,
    help="Seconds before the first retry after a disk fault; doubles each time.",
)
@click.option("--data", default=None, help="The training data, if it moved since `sisa train` (checked by hash).")
@click.option("--target", default=None, help="Label column of csv:/parquet: data.")
@click.option("--subset", type=click.IntRange(min=1), default=None, help=SUBSET_HELP)
@_execution_options
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def requests_process(
    model_dir,
    db,
    limit,
    wait_seconds,
    lease_seconds,
    fault_retries,
    backoff_seconds,
    data,
    target,
    subset,
    backend,
    workers,
    ray_address,
    as_json,
) -> None:
    """Apply pending requests: retrain only the affected shards, commit a new version, mark them done.

    A full or unwritable disk never fails a request: the batch is retried (--fault-retries,
    --backoff) and, if the fault persists, left pending with one line on stderr and exit code 75;
    the next run resumes it.
    """
    execution = _execution(backend, workers, ray_address)
    with _open(model_dir, db, data, target, subset) as sharded:
        outcome = sharded.process(
            execution,
            limit=limit,
            lease_seconds=lease_seconds,
            wait_seconds=wait_seconds,
            fault_retries=fault_retries,
            backoff_seconds=backoff_seconds,
        )
        current = sharded.current_version().version
    if as_json:
        write_json(
            {
                "done_request_ids": list(outcome.done_request_ids),
                "versions": [v.to_dict() for v in outcome.versions],
                "retrained_shards": outcome.retrained_shards,
                "current_version": current,
                "busy": outcome.skipped_busy,
                "seconds": outcome.seconds,
            }
        )
        return
    if outcome.skipped_busy:
        out.print("another worker is processing this model; nothing done (use --wait SECONDS to wait for it)")
        return
    if not outcome.done_request_ids:
        out.print(f"no pending requests; current version {current}")
        return
    out.print(
        f"{len(outcome.done_request_ids)} request(s) done in {outcome.seconds:.1f} s: "
        f"{outcome.retrained_shards} shard retraining(s), current version {current}"
    )


@requests.command("retry")
@_model_dir_option
@click.option("--id", "request_id", type=int, required=True, help="A failed request's id.")
@_db_option
def requests_retry(model_dir, request_id, db) -> None:
    """Put a failed request back in the queue (status received); its error stays in the event log."""
    with _open(model_dir, db) as sharded:
        sharded.ledger.retry(sharded.model_id, request_id)
    out.print(f"request {request_id} is received again; run `erasekit requests process --model-dir {model_dir}`")


# -- erasekit models ----------------------------------------------------------------------
@click.group()
def models() -> None:
    """Model versions of a SISA model directory."""


@models.command("history")
@_model_dir_option
@_db_option
@click.option("--contains", "example_id", type=int, default=None, help="Only versions trained with this example id.")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as a JSON list.")
def models_history(model_dir, db, example_id, as_json) -> None:
    """Every version: when it was made and which examples it removed (current version last)."""
    with _open(model_dir, db) as sharded:
        versions = sharded.history()
        if example_id is not None:
            keep = set(sharded.versions_containing(example_id))
            versions = [v for v in versions if v.version in keep]
        current = sharded.current_version().version
    rows = [{**v.to_dict(), "current": v.version == current} for v in versions]
    if as_json:
        write_json(rows)
        return
    title = f"model versions — {model_dir}" + (f" containing example {example_id}" if example_id is not None else "")
    table = Table(title=title, title_justify="left")
    for header in ("version", "kind", "created", "removed examples", "retrained shards", "seconds"):
        table.add_column(header, justify="right" if header in ("version", "seconds") else "left")
    for r in rows:
        removed = r["removed_example_ids"]
        shown = ", ".join(map(str, removed[:8])) + (f" … ({len(removed)})" if len(removed) > 8 else "")
        table.add_row(
            f"{r['version']}{' (current)' if r['current'] else ''}",
            r["kind"],
            r["created_at"],
            shown or "—",
            ", ".join(map(str, r["retrained_shards"])),
            "—" if r["seconds"] is None else f"{r['seconds']:.2f}",
        )
    out.print(table)


__all__ = ["models", "requests", "sisa"]
