"""The ``erasekit`` command.

Exit codes: 0 success, 2 bad input or usage (one line on stderr, no traceback unless
``--debug``). Nothing is written when a command fails.
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from pathlib import Path
from typing import Optional

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from erasekit import progress
from erasekit.errors import ErasekitError, ModelError



class _Stdout:
    """Rich console bound to the current stdout (wide when piped, so tables do not wrap)."""

    def print(self, *objects, **kwargs) -> None:
        Console(width=None if sys.stdout.isatty() else 160).print(*objects, **kwargs)


out = _Stdout()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors (may be given anywhere).")
def app(debug: bool) -> None:
    """erasekit — remove training data from models and prove it against retraining."""


DATA_HELP = "digits | mnist:DIR | csv:PATH (numeric CSV with a header; needs --target)."
SUBSET_HELP = "Train on a stratified random subset of N training examples (seed 0); e.g. 10000 for quick MNIST runs."


def _load_splits(data: str, target: Optional[str], subset: Optional[int]):
    from erasekit.data import load_data

    splits = load_data(data, target)
    if subset is not None:
        splits = splits.subsample_train(subset)
    return splits


def _data_label(data: str, subset: Optional[int]) -> str:
    return data if subset is None else f"{data} (subset {subset})"


def _recipe(epochs: int, batch_size: int, lr: float):
    from erasekit.training import Recipe

    return Recipe(epochs=epochs, batch_size=batch_size, lr=lr)


@app.command()
@click.option("--data", required=True, help=DATA_HELP)
@click.option("--model", default="mlp", help="Architecture: mlp | cnn.")
@click.option("--out", "out_file", type=click.Path(path_type=Path), required=True,
              help="Where to save the model (.safetensors; a .json sidecar is written next to it).")
@click.option("--target", default=None, help="Label column for csv: data.")
@click.option("--subset", type=click.IntRange(min=1), default=None, help=SUBSET_HELP)
@click.option("--epochs", type=click.IntRange(min=1), default=20, help="Training epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, help="Minibatch size.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.05,
              help="SGD learning rate (cosine decay, momentum 0.9, weight decay 5e-4).")
@click.option("--seed", type=int, default=0, help="Seed for initialisation and shuffling.")
def train(data: str, model: str, out_file: Path, target: Optional[str], subset: Optional[int],
          epochs: int, batch_size: int, lr: float, seed: int) -> None:
    """Train a reference classifier and save it as safetensors plus a JSON sidecar."""
    from erasekit._io import check_writable_file
    from erasekit.audit.metrics import accuracy, predict_logits
    from erasekit.models import ARCHITECTURES, ModelSpec, save_model, sidecar_path
    from erasekit.training import train as train_model

    if model not in ARCHITECTURES:
        raise ModelError(f"unknown --model '{model}'; choose one of {', '.join(ARCHITECTURES)}")
    sidecar_path(out_file)
    check_writable_file(out_file)
    recipe = _recipe(epochs, batch_size, lr)
    splits = _load_splits(data, target, subset)
    spec = ModelSpec(model, splits.input_shape, splits.num_classes)  # type: ignore[arg-type]
    network = spec.build(seed=seed)
    train_model(network, splits.train, recipe, seed=seed, description=f"train {model}")
    scores = {
        "train_acc": accuracy(*predict_logits(network, splits.train)),
        "test_acc": accuracy(*predict_logits(network, splits.test)),
    }
    side = save_model(network, out_file, spec, recipe, _data_label(data, subset), splits.sha256(), seed, scores)
    out.print(
        f"saved {out_file} and {side.name}: {model} on {splits.name}, "
        f"train acc {100 * scores['train_acc']:.2f} %, test acc {100 * scores['test_acc']:.2f} %"
    )


def _forget_spec(text: str, splits):
    from erasekit.data import ForgetSpec

    spec = ForgetSpec.parse(text)
    if spec.kind == "indices":  # index files name source rows (CSV row, MNIST file position)
        spec = ForgetSpec.indices(splits.positions_of_rows(spec.index_list))
    return spec


@app.command()
@click.option("--data", required=True, help=DATA_HELP)
@click.option("--model", default="mlp", help="A model file saved by `erasekit train`, or mlp | cnn to train the original here.")
@click.option("--forget", required=True, help="class=3[,5] | random=0.1 | indices=FILE (row numbers of the source data).")
@click.option("--methods", default="all", help="Comma-separated method names, or all. See `erasekit methods`.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Directory for report.json and report.html.")
@click.option("--seeds", type=click.IntRange(min=1), default=1,
              help="Repeat with seeds 0..N-1 (training seed and random forget draw); report mean ± std.")
@click.option("--param", multiple=True, help="Method parameter METHOD.NAME=VALUE (repeatable), e.g. salun.mask_ratio=0.3.")
@click.option("--target", default=None, help="Label column for csv: data.")
@click.option("--subset", type=click.IntRange(min=1), default=None, help=SUBSET_HELP)
@click.option("--epochs", type=click.IntRange(min=1), default=20, help="Recipe epochs when the original is trained here (mlp|cnn).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, help="Recipe minibatch size when the original is trained here.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.05, help="Recipe learning rate when the original is trained here.")
@click.option("--shadow-size", type=click.IntRange(min=0), default=2000,
              help="Examples per side for the SVC membership attack (0 = the whole test set).")
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout instead of the table.")
def unlearn(data: str, model: str, forget: str, methods: str, out_dir: Path, seeds: int, param: tuple[str, ...],
            target: Optional[str], subset: Optional[int], epochs: int, batch_size: int, lr: float,
            shadow_size: int, as_json: bool) -> None:
    """Run unlearning methods and the exact retrain reference; write report.json and report.html."""
    from erasekit._io import check_writable_dir
    from erasekit.audit.unlearning import AuditConfig
    from erasekit.experiment import ExperimentConfig, Scenario, run_experiment
    from erasekit.report import write_report
    from erasekit.unlearn import parse_method_list, parse_param_overrides

    check_writable_dir(out_dir)
    method_names = parse_method_list(methods)
    params = parse_param_overrides(list(param), method_names)
    splits = _load_splits(data, target, subset)
    original = _original(model, splits, _recipe(epochs, batch_size, lr))
    spec = _forget_spec(forget, splits)
    spec.resolve(splits.train.y.numpy(), splits.num_classes)  # fail fast, before any training
    config = ExperimentConfig(
        data=splits,
        data_spec=_data_label(data, subset),
        original=original,
        scenarios=(Scenario(f"forget {spec.describe()}", spec),),
        methods=method_names,
        params=params,
        seeds=seeds,
        audit=AuditConfig(shadow_size=shadow_size or None),
    )
    report = run_experiment(config)
    json_path, html_path = write_report(report, out_dir)
    if as_json:
        sys.stdout.write(json_path.read_text())
    else:
        _print_summary(report)
        out.print(f"wrote {json_path} and {html_path}")


def _original(model: str, splits, recipe):
    from erasekit.experiment import OriginalModel
    from erasekit.models import ARCHITECTURES, ModelSpec, load_model
    from erasekit.unlearn.base import check_output_size

    if model in ARCHITECTURES:
        return OriginalModel(ModelSpec(model, splits.input_shape, splits.num_classes), recipe)  # type: ignore[arg-type]
    path = Path(model)
    if path.suffix != ".safetensors" and not path.exists():
        raise ModelError(f"--model '{model}' is neither a model file nor one of {', '.join(ARCHITECTURES)}")
    saved = load_model(path)
    if saved.data_sha256 != splits.sha256():
        raise ModelError(
            f"{path} was trained on different data ({saved.data_spec}, sha256 {saved.data_sha256[:12]}…); "
            "pass the same --data (and --subset) it was trained on, so retraining is a valid reference"
        )
    check_output_size(saved.model, splits.train, splits.num_classes)
    return OriginalModel(saved.spec, saved.recipe, pretrained=saved.model)


def _print_summary(report) -> None:
    for scenario in report.scenarios:
        table = Table(title=f"{scenario.scenario.name} — {scenario.scenario.data['spec']}", title_justify="left")
        for header in ("method", "forget %", "retain %", "test %", "MIA-eff %", "Avg. Gap", "seconds", "speed-up"):
            table.add_column(header, justify="left" if header == "method" else "right")
        best = scenario.best_method()
        for row in (scenario.reference, *scenario.methods):
            m = row.metrics
            name = row.name + (" (exact)" if row.role == "reference" else " (no unlearning)" if row.role == "negative_control" else "")
            table.add_row(
                f"[bold]{name}[/bold]" if best is not None and row.name == best.name else name,
                f"{100 * m.forget_acc:.1f}",
                f"{100 * m.retain_acc:.1f}",
                f"{100 * m.test_acc:.1f}",
                f"{100 * m.mia_efficacy:.1f}",
                f"{100 * row.avg_gap:.1f}",
                f"{row.seconds:.2f}",
                "—" if row.speedup is None else f"{row.speedup:.1f}×",
            )
        out.print(table)


@app.command()
@click.option("--embeddings", type=click.Path(path_type=Path), default=None, help="Embeddings .npy [n, d] (float).")
@click.option("--concept", type=click.Path(path_type=Path), default=None, help="Concept labels .npy [n] (classes) or [n]/[n, m] floats.")
@click.option("--method", default="leace", help="Eraser for embeddings: leace | leace_orth | inlp | quadratic.")
@click.option("--data", default=None, help="A table: csv:PATH (numeric and categorical columns, header row).")
@click.option("--target", default=None, help="Main-task label column of the table (utility is measured on it).")
@click.option("--remove", default=None, help="Comma-separated columns to remove from the table.")
@click.option("--proxies", type=click.Choice(["leace", "none"]), default="leace",
              help="Also erase the removed columns' linear trace from the kept ones (leace), or only drop them (none).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Directory for the report and erased data.")
@click.option("--test-fraction", type=float, default=0.3, help="Held-out share for the audit (the eraser never sees it).")
@click.option("--probes", default="linear,mlp,gbm", help="Probes to run: any of linear, mlp, gbm.")
@click.option("--n-boot", type=click.IntRange(min=100), default=1000, help="Bootstrap resamples for the 95 % CIs.")
@click.option("--seed", type=int, default=0, help="Seed for the split, probes and bootstrap.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout.")
def erase(embeddings, concept, method, data, target, remove, proxies, out_dir, test_fraction, probes, n_boot, seed, as_json) -> None:
    """Erase a concept from embeddings, or remove columns (and their proxies) from a table; audit with probes."""
    from erasekit._io import atomic_write_bytes, check_writable_dir
    from erasekit.audit.probes import PROBES
    from erasekit.concepts import eraser_info
    from erasekit.report.concepts import concept_html

    check_writable_dir(out_dir)
    probe_list = tuple(p.strip() for p in probes.split(",") if p.strip())
    unknown = [p for p in probe_list if p not in PROBES]
    if unknown or not probe_list:
        raise ErasekitError(f"unknown probe {unknown[0] if unknown else '(none)'}; choose from {', '.join(PROBES)}")
    if (embeddings is None) == (data is None):
        raise ErasekitError("give either --embeddings X.npy --concept Z.npy, or --data csv:PATH --target COL --remove COLS")
    if embeddings is not None:
        from erasekit.concepts.runs import erase_embeddings

        if concept is None:
            raise ErasekitError("--embeddings needs --concept Z.npy (one label per row)")
        eraser_info(method)
        x, z = _load_npy(embeddings, "embeddings"), _load_npy(concept, "concept")
        report, erased, eraser = erase_embeddings(x, z, method, None, test_fraction, seed, probe_list, n_boot, concept.stem)
        buffer = io.BytesIO()
        np.save(buffer, erased)
        outputs = {"erased.npy": buffer.getvalue()}
    else:
        from erasekit.concepts.runs import erase_table
        from erasekit.data.tables import read_table

        kind, _, path = data.partition(":")
        if kind != "csv" or not path:
            raise ErasekitError(f"--data for erase must be csv:PATH, got '{data}'")
        if not target or not remove:
            raise ErasekitError("a table needs --target COL and --remove COL[,COL]")
        frame = read_table(Path(path))
        report, erased_frame = erase_table(frame, target, [c.strip() for c in remove.split(",") if c.strip()], proxies,
                                           test_fraction, seed, probe_list, n_boot)
        outputs = {"erased.csv": erased_frame.to_csv(index=False).encode()}
        eraser = None
    report = dataclasses.replace(report, command=" ".join(["erasekit", *sys.argv[1:]]))
    json_text = json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"
    html_text = concept_html(report)
    if eraser is not None:
        from erasekit.concepts.base import eraser_bytes

        outputs["eraser.safetensors"] = eraser_bytes(eraser)
    outputs["report.json"] = json_text.encode()
    outputs["report.html"] = html_text.encode()
    for name, payload in outputs.items():
        atomic_write_bytes(out_dir / name, payload)
    if as_json:
        sys.stdout.write(json_text)
        return
    for rep, verdict in report.verdicts.items():
        out.print(f"{rep}: {verdict}")
    for row in report.probes:
        r = row.result
        out.print(f"  {row.representation:24s} {row.target:12s} {r.probe:6s} {r.metric} {r.score:.3f} "
                  f"[{r.ci_low:.3f}, {r.ci_high:.3f}] baseline {r.baseline:.3f}{'  LEAKS' if r.leaks else ''}")
    out.print(f"wrote {', '.join(str(out_dir / n) for n in outputs)}")


def _load_npy(path: Path, what: str):
    from erasekit.errors import DataError

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read {what} file {path}: {str(exc).splitlines()[0]} (a .npy array without objects is expected)") from None


@app.command("methods")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list.")
def list_methods(as_json: bool) -> None:
    """List the registered unlearning methods with their parameters and defaults."""
    from erasekit.unlearn import available_methods, method_info

    infos = [method_info(n) for n in available_methods()]
    if as_json:
        sys.stdout.write(json.dumps(
            [{"name": i.name, "exact": i.exact, "summary": i.summary, "params": i.parameter_defaults()} for i in infos],
            indent=2) + "\n")
        return
    for info in infos:
        defaults = ", ".join(f"{k}={v}" for k, v in info.parameter_defaults().items()) or "uses the original's recipe"
        out.print(f"[bold]{info.name}[/bold] — {info.summary} [dim]({defaults})[/dim]", highlight=False, soft_wrap=True)


@app.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("erasekit-demo"),
              help="Directory for report.json and report.html.")
@click.option("--seeds", type=click.IntRange(min=1), default=3, help="Seeds per scenario.")
def demo(out_dir: Path, seeds: int) -> None:
    """Forget a class and a random 10 % of scikit-learn's bundled digits with every method."""
    from erasekit._io import check_writable_dir
    from erasekit.data import ForgetSpec, load_digits
    from erasekit.experiment import ExperimentConfig, OriginalModel, Scenario, run_experiment
    from erasekit.models import ModelSpec
    from erasekit.report import write_report
    from erasekit.training import Recipe
    from erasekit.unlearn import parse_method_list

    check_writable_dir(out_dir)
    splits = load_digits()
    config = ExperimentConfig(
        data=splits,
        data_spec="digits",
        original=OriginalModel(ModelSpec("mlp", splits.input_shape, splits.num_classes), Recipe()),
        scenarios=(
            Scenario("forget class 3", ForgetSpec.classes(3)),
            Scenario("forget a random 10%", ForgetSpec.random(0.1)),
        ),
        methods=parse_method_list("all"),
        seeds=seeds,
    )
    report = run_experiment(config)
    json_path, html_path = write_report(report, out_dir)
    _print_summary(report)
    out.print(f"wrote {json_path} and {html_path}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user errors into one line and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"] or ["--help"]  # --debug may stand anywhere
    try:
        with progress.session():
            app.main(args=args, prog_name="erasekit", standalone_mode=False)
    except ErasekitError as exc:
        if debug:
            raise
        print(f"erasekit: error: {exc}", file=sys.stderr)
        return 2
    except click.exceptions.UsageError as exc:
        if debug:
            raise
        print(f"erasekit: error: {exc.format_message()} (see --help)", file=sys.stderr)
        return 2
    except click.exceptions.Abort:
        print("erasekit: aborted", file=sys.stderr)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


def run() -> None:
    """Console-script entry point."""
    raise SystemExit(main())


from erasekit import cli_select  # noqa: E402,F401  (registers `erasekit select`)
from erasekit import cli_ledger  # noqa: E402,F401  (registers `erasekit sisa`, `requests`, `models`)
