"""``erasekit select`` (keep the top-k fields of a table) and ``erasekit select bench`` (the ERASE protocol)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from erasekit.cli.options import check_out_dir, command_line, out, write_json

SELECT_DATA_HELP = (
    "csv:PATH | parquet:PATH | criteo:PATH | libsvm:PATH | adult:DIR | synthetic[:ROWS]. "
    "Criteo/libSVM/Adult/synthetic know their target."
)


def _prepare(data: str, target: str | None, categorical: str, hash_buckets: int | None, seed: int):
    from erasekit.core.errors import DataError
    from erasekit.data.ctr import load_field_data, prepare_table

    declared = tuple(c.strip() for c in categorical.split(",") if c.strip())
    loaded = load_field_data(data, declared, seed=seed)
    target = target or loaded.target
    if target is None:
        raise DataError(f"--target is required for {data.partition(':')[0]}: data (the binary label column)")
    prepared = prepare_table(
        loaded.frame,
        target,
        declared,
        test_frame=loaded.test_frame,
        hash_buckets=hash_buckets,
        log_numeric=data.startswith("criteo:"),
        seed=seed,
    )
    return loaded, prepared


def _backbone(model: str, epochs: int, device: str):
    from erasekit.core.device import resolve_device
    from erasekit.models.ctr import CTRRecipe, CTRSpec

    where = str(resolve_device(device))
    return CTRSpec(model, device=where), CTRRecipe(max_epochs=epochs)  # type: ignore[arg-type]  # click.Choice checked it


def _common(data_required: bool):
    return [
        click.option("--data", required=data_required, default=None, help=SELECT_DATA_HELP),
        click.option(
            "--target", default=None, help="Binary label column (default: the source's own, e.g. label / income / click)."
        ),
        click.option(
            "--categorical", default="", help="Comma-separated columns to treat as categorical even if numeric-looking."
        ),
        click.option(
            "--hash-buckets",
            type=click.IntRange(min=1),
            default=None,
            help="Hash categorical values into this many buckets per field (for high-cardinality ids).",
        ),
        click.option(
            "--model",
            default="deepfm",
            type=click.Choice(["lr", "fm", "deepfm", "dcn"]),
            help="CTR backbone for gate methods and retraining.",
        ),
        click.option(
            "--epochs", type=click.IntRange(min=1), default=10, help="Backbone max epochs (early stopping on validation logloss)."
        ),
        click.option("--param", multiple=True, help="Method parameter METHOD.NAME=VALUE (repeatable), e.g. optfs.level=value."),
        click.option("--seed", type=int, default=0, help="Seed for the split and the methods."),
        click.option(
            "--device",
            default="auto",
            help="Where CTR backbones train (auto | cpu | cuda | cuda:N | mps); gate searches run on the CPU.",
        ),
    ]


def _with_common(data_required: bool):
    def decorate(fn):
        for option in reversed(_common(data_required)):
            fn = option(fn)
        return fn

    return decorate


@click.group(invoke_without_command=True)
@_with_common(data_required=False)
@click.option("--method", default=None, help="Selection method (see `erasekit select methods`).")
@click.option("--k", "k", type=click.IntRange(min=1), default=None, help="Number of fields (columns) to keep.")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), default=None, help="Directory for selection.json and reduced.csv."
)
@click.option(
    "--task",
    type=click.Choice(["binary", "multiclass", "regression"]),
    default=None,
    help="Plain tables: what the target is (default: inferred — text or ≤ 50 integer values are classes).",
)
@click.option(
    "--downstream",
    type=click.Choice(["gbdt", "mlp"]),
    default="gbdt",
    help="Plain tables: the model that scores the kept columns on held-out rows (LightGBM or a small MLP).",
)
@click.option("--random-draws", type=click.IntRange(min=1), default=10, help="Plain tables: random k-column baselines drawn.")
@click.option(
    "--memory-budget-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Plain tables: refuse a table whose working copies exceed this (default: half the available memory).",
)
@click.option("--json", "as_json", is_flag=True, help="Print selection.json to stdout.")
@click.pass_context
def select(
    ctx,
    data,
    target,
    categorical,
    hash_buckets,
    model,
    epochs,
    param,
    seed,
    device,
    method,
    k,
    out_dir,
    task,
    downstream,
    random_draws,
    memory_budget_mb,
    as_json,
) -> None:
    """Rank the columns of a table with one method, keep the top k, write the reduced table.

    Plain tables (csv:, parquet:) with any target — binary, multi-class or regression — are ranked
    by the shallow and exact methods and judged by a downstream model on held-out rows, against
    every column and against random columns. Field-structured CTR data (criteo:, libsvm:, adult:,
    synthetic:) and the gate methods use the CTR backbones (binary targets).

    \b
    erasekit select --data csv:table.csv --target label --method gbdt --k 20 --out sel/
    erasekit select bench --data adult:DIR --methods gbdt,optfs --ks 2,4,8 --out bench/
    """
    if ctx.invoked_subcommand is not None:
        return
    missing = [name for name, value in (("--data", data), ("--method", method), ("--k", k), ("--out", out_dir)) if value is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or use a subcommand: bench, methods)")
    from erasekit.features import parse_selector_params, selector_info
    from erasekit.pipelines.selection import run_selection
    from erasekit.report import to_json, write_report

    info = selector_info(method)
    overrides = parse_selector_params(param, [method])
    check_out_dir(out_dir)
    if data.partition(":")[0] in ("csv", "parquet") and info.family != "gate":
        _select_plain(
            data, target, categorical, method, overrides.get(method), k, seed, task, downstream, random_draws,
            memory_budget_mb, out_dir, as_json,
        )  # fmt: skip
        return
    loaded, prepared = _prepare(data, target, categorical, hash_buckets, seed)
    spec, recipe = _backbone(model, epochs, device)
    report = run_selection(
        prepared, method, k, overrides.get(method), seed, spec, recipe, data_label=data, command=command_line()
    )
    selection = report.selection
    reduced = loaded.frame[list(selection.kept) + [prepared.target]]
    write_report(report, out_dir, {"reduced.csv": reduced.to_csv(index=False).encode()})
    if as_json:
        sys.stdout.write(to_json(report))
        return
    _print_top(selection, k, "fields")
    out.print(f"wrote {out_dir / 'selection.json'} (every field's score and rank) and {out_dir / 'reduced.csv'}")


SHOWN = 10  # ranks printed on stdout; the full ranking is in the files


def _print_top(selection, k: int, what: str) -> None:
    table = Table(title=f"{selection.method}: keep {k} of {len(selection.ranking)} {what} ({selection.seconds:.1f} s)")
    for column in ("rank", "name", "score", "decision"):
        table.add_column(column, justify="right" if column in ("rank", "score") else "left")
    for position, name in enumerate(selection.ranking[:SHOWN], start=1):
        table.add_row(str(position), name, f"{selection.scores[name]:.4g}", "kept" if position <= k else "removed")
    if len(selection.ranking) > SHOWN:
        table.add_row("…", f"{len(selection.ranking) - SHOWN} more", "", "")
    out.print(table)


def _select_plain(
    data, target, categorical, method, selector, k, seed, task, downstream, random_draws, memory_budget_mb, out_dir, as_json
) -> None:
    """`select` on a plain csv/parquet table: any target, judged by a downstream model (see erasekit.pipelines.table_selection)."""
    import io

    import pandas as pd

    from erasekit.core.errors import DataError
    from erasekit.data.plain_tables import prepare_plain_table
    from erasekit.data.sources import TABLE_KINDS, DataSpec
    from erasekit.data.tables import read_table
    from erasekit.pipelines.table_selection import run_table_selection
    from erasekit.report import to_json, write_report

    if not target:
        raise DataError("--target COL is required for csv:/parquet: tables (the column to predict)")
    frame = read_table(DataSpec.parse(data, TABLE_KINDS).path)
    declared = tuple(c.strip() for c in categorical.split(",") if c.strip())
    table = prepare_plain_table(frame, target, task, declared, seed=seed, memory_budget_mb=memory_budget_mb)
    report = run_table_selection(
        table, method, k, selector, seed, downstream, random_draws, data_label=data, command=command_line()
    )
    selection = report.selection
    ranking = pd.DataFrame(
        {
            "rank": range(1, len(selection.ranking) + 1),
            "column": selection.ranking,
            "score": [selection.scores[c] for c in selection.ranking],
        }
    )
    ranking["kept"] = ranking["rank"] <= k
    reduced = frame[list(selection.kept) + [target]]
    buffer = io.StringIO()
    ranking.to_csv(buffer, index=False)
    write_report(
        report, out_dir, {"ranking.csv": buffer.getvalue().encode(), "reduced.csv": reduced.to_csv(index=False).encode()}
    )
    if as_json:
        sys.stdout.write(to_json(report))
        return
    metric = "R²" if report.metric == "r2" else "accuracy"
    baseline = report.random_k
    out.print(
        f"{method} on {data} ({report.task}{f', {len(report.classes)} classes' if report.classes else ''}): "
        f"kept {k} of {table.n_columns} columns in {selection.seconds:.1f} s",
        highlight=False,
    )
    out.print(
        f"held-out {metric} ({downstream}): {report.at_k.score:.4f} with them · {report.all_columns.score:.4f} with all "
        f"{table.n_columns} · {baseline.mean:.4f} ± {baseline.std:.4f} with {k} random columns ({baseline.draws} draws)",
        highlight=False,
    )
    colour = "green" if report.verdict == "better_than_random" else "yellow"
    out.print(f"verdict: [{colour}]{report.verdict.replace('_', ' ')}[/{colour}] — {report.verdict_reason}", highlight=False)
    if not report.selector_complete:
        out.print("[yellow]the method ran out of its time budget: its ranking is the result so far[/yellow]")
    shown = ", ".join(selection.kept[:SHOWN]) + (f", … (+{k - SHOWN} more)" if k > SHOWN else "")
    out.print(f"kept: {shown}", highlight=False)
    out.print(f"wrote {out_dir / 'selection.json'}, {out_dir / 'ranking.csv'} and {out_dir / 'reduced.csv'}")


@select.command("bench")
@_with_common(data_required=True)
@click.option("--methods", default="all", help="Comma-separated selection methods, or all.")
@click.option("--ks", default="2,4,8", help="Comma-separated k grid (fields kept).")
@click.option("--seeds", type=click.IntRange(min=1), default=1, help="Number of seeds (0..N-1).")
@click.option(
    "--removal-top",
    type=click.IntRange(min=1),
    default=3,
    help="How many top fields to remove in the mask/ROAR/impute comparison.",
)
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Directory for report.json and report.html."
)
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout.")
def bench(
    data, target, categorical, hash_buckets, model, epochs, param, seed, device, methods, ks, seeds, removal_top, out_dir, as_json
) -> None:
    """ERASE protocol: rank → retrain on top-k → test AUC/logloss over a k grid → AUKC; plus removal strategies."""
    from erasekit.features import parse_selector_list, parse_selector_params
    from erasekit.pipelines.selection import run_selection_bench
    from erasekit.report import to_json, write_report

    names = parse_selector_list(methods)
    overrides = parse_selector_params(param, names)
    try:
        grid = tuple(int(v) for v in ks.split(",") if v.strip())
    except ValueError:
        raise click.UsageError(f"--ks must be comma-separated integers, got '{ks}'") from None
    check_out_dir(out_dir)
    loaded, prepared = _prepare(data, target, categorical, hash_buckets, seed)
    spec, recipe = _backbone(model, epochs, device)
    report = run_selection_bench(
        prepared,
        names,
        grid,
        tuple(range(seed, seed + seeds)),
        overrides,
        spec,
        recipe,
        relevant=loaded.relevant,
        removal_top=removal_top,
        dataset=loaded.description,
        command=command_line(),
    )
    paths = write_report(report, out_dir)
    if as_json:
        sys.stdout.write(to_json(report))
        return
    table = Table(title=f"{loaded.description}: test AUC of the backbone retrained on the top-k fields")
    table.add_column("method")
    table.add_column("AUKC", justify="right")
    for k in report.ks:
        table.add_column(f"AUC@{k}", justify="right")
    if report.relevant_fields:
        table.add_column(f"P@{report.ks[-1]}", justify="right")
    table.add_column("select s", justify="right")
    for row in report.summary:
        cells = [row.method, f"{row.aukc.mean:.4f}"] + [f"{row.auc[k].mean:.4f}" for k in report.ks]
        if report.relevant_fields and row.precision_at_k:
            cells.append(f"{row.precision_at_k[report.ks[-1]].mean:.2f}")
        table.add_row(*cells, f"{row.seconds.mean:.1f}")
    out.print(table)
    out.print(f"wrote {' and '.join(map(str, paths))}")


@select.command("methods")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list.")
def select_methods(as_json: bool) -> None:
    """List the field-selection methods with their family and parameter defaults."""
    from erasekit.features import SELECTORS
    from erasekit.report import jsonable

    if as_json:
        write_json(
            [
                {"name": i.name, "family": i.family, "summary": i.summary, "params": jsonable(i.parameter_defaults())}
                for i in SELECTORS
            ]
        )
        return
    for info in SELECTORS:
        defaults = ", ".join(f"{k}={v}" for k, v in info.parameter_defaults().items())
        out.print(
            f"[bold]{info.name}[/bold] ({info.family}) — {info.summary} [dim]({defaults})[/dim]", highlight=False, soft_wrap=True
        )
