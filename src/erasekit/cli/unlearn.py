"""``erasekit train | unlearn | methods | demo``: the training-data family."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from erasekit.cli.options import (
    check_architecture,
    check_out_dir,
    command_line,
    data_label,
    data_options,
    device_options,
    json_option,
    load_splits,
    make_recipe,
    out,
    recipe_options,
    resolve_device,
    write_json,
)


@click.command()
@data_options
@click.option("--model", default="mlp", help="Architecture: mlp | cnn.")
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path),
    required=True,
    help="Where to save the model (.safetensors; a .json sidecar is written next to it).",
)
@recipe_options
@click.option("--seed", type=int, default=0, help="Seed for initialisation and shuffling.")
@device_options
def train(
    data: str,
    model: str,
    out_file: Path,
    target: str | None,
    subset: int | None,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: str,
    precision: str,
) -> None:
    """Train a reference classifier and save it as safetensors plus a JSON sidecar."""
    from erasekit.audit.metrics import accuracy, non_finite_fraction, predict_logits
    from erasekit.core.errors import ModelError
    from erasekit.core.io import check_writable_file
    from erasekit.models import ModelSpec
    from erasekit.models.adapter import Classifier
    from erasekit.training import save_model, sidecar_path
    from erasekit.training import train as train_model

    where = resolve_device(device)
    check_architecture(model)
    sidecar_path(out_file)
    check_writable_file(out_file)
    recipe = make_recipe(epochs, batch_size, lr)
    splits = load_splits(data, target, subset)
    spec = ModelSpec(model, splits.input_shape, splits.num_classes)  # type: ignore[arg-type]
    network = Classifier(spec.build(seed=seed).to(where), precision=precision)
    train_model(network, splits.train, recipe, seed=seed, description=f"train {model} on {where}")
    train_logits, train_labels = predict_logits(network, splits.train)
    if non_finite_fraction(train_logits) > 0:
        raise ModelError(f"training diverged (NaN/inf outputs) with --lr {lr:g}; nothing was saved — lower --lr")
    scores = {"train_acc": accuracy(train_logits, train_labels), "test_acc": accuracy(*predict_logits(network, splits.test))}
    side = save_model(network, out_file, spec, recipe, data_label(data, subset), splits.sha256(), seed, scores)
    out.print(
        f"saved {out_file} and {side.name}: {model} on {splits.name} ({where}), "
        f"train acc {100 * scores['train_acc']:.2f} %, test acc {100 * scores['test_acc']:.2f} %"
    )


def _forget_spec(text: str, splits):
    from erasekit.data import ForgetSpec

    spec = ForgetSpec.parse(text)
    if spec.kind == "indices":  # index files name source rows (CSV row, MNIST file position)
        spec = ForgetSpec.indices(splits.positions_of_rows(spec.index_list))
    return spec


@click.command()
@data_options
@click.option("--model", default="mlp", help="A model file saved by `erasekit train`, or mlp | cnn to train the original here.")
@click.option(
    "--forget",
    required=True,
    help="class=3[,5] | random=0.1 (random=0.1,draw=0: the same draw in every seed) | indices=FILE (row numbers of the source data).",
)
@click.option("--methods", default="all", help="Comma-separated method names, or all. See `erasekit methods`.")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Directory for report.json and report.html."
)
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=1,
    help="Repeat with seeds 0..N-1 (training seed and random forget draw); report mean ± std.",
)
@click.option("--param", multiple=True, help="Method parameter METHOD.NAME=VALUE (repeatable), e.g. salun.mask_ratio=0.3.")
@recipe_options
@click.option(
    "--shadow-size",
    type=click.IntRange(min=0),
    default=2000,
    help="Examples per side for the SVC membership attack (0 = the whole test set).",
)
@click.option(
    "--tune",
    "tune_budget",
    type=click.IntRange(min=0),
    default=0,
    help="Tune each method's parameters in N trials on a proxy deletion (one extra retrain) before running it; 0 = off.",
)
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Keep trained originals and retrain references in this folder and reuse them on later runs.",
)
@click.option(
    "--save-model",
    "save_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write the new model (seed 0) here: model.safetensors + model.json + receipt.json. Needs one --methods NAME.",
)
@click.option(
    "--request-id",
    default=None,
    help="The deletion request's reference, recorded in the receipt (default: a new UUID).",
)
@device_options
@json_option
def unlearn(
    data: str,
    model: str,
    forget: str,
    methods: str,
    out_dir: Path,
    seeds: int,
    param: tuple[str, ...],
    target: str | None,
    subset: int | None,
    epochs: int,
    batch_size: int,
    lr: float,
    shadow_size: int,
    tune_budget: int,
    cache_dir: Path | None,
    save_dir: Path | None,
    request_id: str | None,
    device: str,
    precision: str,
    as_json: bool,
) -> None:
    """Run unlearning methods and the exact retrain reference; write report.json and report.html.

    With --seeds 3 or more and the same forget set in every seed (class or index requests), every
    method also gets per-example evidence: the NeurIPS 2023 score, a likelihood-ratio attack and KLOM.

    With --save-model DIR and one method, the new model and its deletion receipt (request id,
    forgotten ids and their SHA-256, parameters, weight hashes, verdict, timestamps) are written.
    """
    from erasekit.audit.unlearning import AuditConfig
    from erasekit.core.errors import ErasekitError
    from erasekit.core.provenance import now_utc
    from erasekit.pipelines.unlearning import ExperimentConfig, Scenario, run_experiment
    from erasekit.report import to_json, write_report
    from erasekit.training.cache import ModelCache
    from erasekit.unlearn import parse_method_list, parse_param_overrides

    started_at = now_utc()
    where = resolve_device(device)
    check_out_dir(out_dir)
    if cache_dir is not None:
        check_out_dir(cache_dir)
    method_names = parse_method_list(methods)
    if save_dir is not None:
        if len(method_names) != 1:
            raise ErasekitError(
                f"--save-model delivers one method's model, but --methods names {len(method_names)}; pass --methods NAME"
            )
        check_out_dir(save_dir)
    kept: dict[str, object] = {}
    params = parse_param_overrides(list(param), method_names)
    splits = load_splits(data, target, subset)
    data_sha = splits.sha256()  # of the data as given: what a delivered model's sidecar is checked against
    original, already_forgotten = _original(model, splits, make_recipe(epochs, batch_size, lr))
    if already_forgotten:
        # a delivered model forgot these rows before: they are gone from its world, and from the retrain reference
        from erasekit.data import ForgetSpec

        requested = ForgetSpec.parse(forget)
        again = sorted(set(requested.index_list) & set(already_forgotten)) if requested.kind == "indices" else []
        if again:
            raise ErasekitError(
                f"row {again[0]} was already forgotten by this model (its sidecar lists {len(already_forgotten)} forgotten rows)"
            )
        splits = splits.without_train_rows(already_forgotten, "forgotten by earlier requests")
    spec = _forget_spec(forget, splits)
    spec.resolve(splits.train.y.numpy(), splits.num_classes)  # fail fast, before any training
    config = ExperimentConfig(
        data=splits,
        data_spec=data_label(data, subset),
        original=original,
        scenarios=(Scenario(f"forget {spec.describe()}", spec),),
        methods=method_names,
        params=params,
        seeds=seeds,
        audit=AuditConfig(shadow_size=shadow_size or None),
        command=command_line(),
        fit_methods_to_scenario=methods.strip() == "all",
        tune=tune_budget,
        model_cache=None if cache_dir is None else ModelCache(cache_dir),
        device=str(where),
        precision=precision,
        on_model=None
        if save_dir is None
        else lambda _scenario, row, seed, network: _keep(kept, method_names[0], row, seed, network),
    )
    report = run_experiment(config)
    if save_dir is not None:
        from dataclasses import replace

        receipt = _deliver(
            report, kept, save_dir, out_dir, splits, spec, config, request_id, started_at, data_label(data, subset),
            data_sha, already_forgotten,
        )  # fmt: skip
        report = replace(report, receipt=receipt)
    paths = write_report(report, out_dir)
    if as_json:
        sys.stdout.write(to_json(report))
    else:
        print_summary(report)
        if report.receipt is not None and save_dir is not None:
            r = report.receipt
            out.print(
                f"saved {save_dir / r.new_weights_file} with receipt.json: request {r.request_id}, "
                f"{r.forgotten.count} examples forgotten by {r.method}, verdict {r.verdict.replace('_', ' ')}"
            )
        out.print(f"wrote {' and '.join(map(str, paths))}")


def _keep(kept: dict, method: str, row: str, seed: int, network) -> None:
    from erasekit.pipelines.unlearning import base_method

    if seed == 0 and base_method(row) == method:
        kept["model"], kept["row"] = network, row


def _deliver(
    report, kept, save_dir: Path, out_dir: Path, splits, spec, config, request_id, started_at: str, data_spec: str,
    data_sha: str, earlier=(),
):  # fmt: skip
    """Write the new model, its sidecar and the deletion receipt together (all or nothing); return the receipt."""
    import hashlib
    import json
    import uuid

    from erasekit.core.io import write_sibling_files
    from erasekit.core.provenance import now_utc, sha256_state
    from erasekit.report.receipt import forgotten_examples, make_receipt
    from erasekit.report.render import jsonable
    from erasekit.training.files import model_files

    model = kept["model"]
    scenario = report.scenarios[0]
    row = next(r for r in (scenario.reference, *scenario.methods) if r.name == kept["row"])
    positions = spec.resolve(splits.train.y.numpy(), splits.num_classes, seed=0)
    forgotten = forgotten_examples(spec.describe(), spec.kind, splits.train_rows[positions])
    run = row.runs[0]
    metrics = {"forget_acc": run.metrics.forget_acc, "retain_acc": run.metrics.retain_acc, "test_acc": run.metrics.test_acc}
    weights = save_dir / "model.safetensors"
    original_sha = row.provenance.weights_sha256_before[0] if row.provenance.weights_sha256_before else ""
    extra = {
        "unlearned": {
            "from_weights_sha256": original_sha,
            "forgotten_ids_sha256": forgotten.ids_sha256,
            "receipt": "receipt.json",
            # every request so far: a later request on this model retrains without all of them
            "forgotten_rows": sorted(set(earlier) | set(forgotten.ids)),
        }
    }
    files = model_files(model, weights, config.original.spec, config.original.recipe, data_spec, data_sha, 0, metrics, extra)
    receipt = make_receipt(
        request_id=request_id or str(uuid.uuid4()),
        forgotten=forgotten,
        method=row.name,
        params=row.params,
        seed=0,
        data_spec=data_spec,
        data_sha256=data_sha,
        original_weights_sha256=original_sha,
        new_weights_sha256=sha256_state(model),
        new_weights_file=weights.name,
        new_weights_file_sha256=hashlib.sha256(files[weights]).hexdigest(),
        verdict=row.verdict or "reference",
        verdict_reason=row.verdict_reason or "the exact reference: retrained without the forgotten examples",
        report=str(out_dir / "report.json"),
        started_at=started_at,
        finished_at=now_utc(),
        device=report.provenance.hardware.device,
    )
    files[save_dir / "receipt.json"] = (json.dumps(jsonable(receipt), indent=2, allow_nan=False) + "\n").encode()
    write_sibling_files(files)
    return receipt


def _original(model: str, splits, recipe):
    """The original to unlearn from, and the rows it has already forgotten (a model delivered by --save-model)."""
    from erasekit.core.errors import ModelError
    from erasekit.models import ARCHITECTURES, ModelSpec
    from erasekit.pipelines.unlearning import OriginalModel
    from erasekit.training import load_model
    from erasekit.unlearn import check_output_size

    if model in ARCHITECTURES:
        return OriginalModel(ModelSpec(model, splits.input_shape, splits.num_classes), recipe), ()  # type: ignore[arg-type]
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
    return OriginalModel(saved.spec, saved.recipe, pretrained=saved.model), saved.forgotten_rows


def print_summary(report) -> None:
    """The report's scenarios as tables on stdout, with each method's verdict; the fastest that matches retrain in bold."""
    suffix = {"reference": " (exact)", "negative_control": " (no unlearning)", "positive_control": " (another seed)"}
    for scenario in report.scenarios:
        table = Table(title=f"{scenario.scenario.name} — {scenario.scenario.data.spec}", title_justify="left")
        headers = ("method", "verdict", "forget %", "retain %", "test %", "MIA-eff %", "Avg. Gap", "seconds", "speed-up")
        for header in headers:
            table.add_column(header, justify="left" if header in ("method", "verdict") else "right")
        best = scenario.best_method()
        for row in (scenario.reference, *scenario.methods):
            m = row.metrics
            name = row.name + suffix.get(row.role, "")
            table.add_row(
                f"[bold]{name}[/bold]" if best is not None and row.name == best.name else name,
                (row.verdict or "reference").replace("_", " "),
                f"{100 * m.forget_acc:.1f}",
                f"{100 * m.retain_acc:.1f}",
                f"{100 * m.test_acc:.1f}",
                f"{100 * m.mia_efficacy:.1f}",
                f"{100 * row.avg_gap:.1f}",
                f"{row.seconds:.2f}",
                "—" if row.speedup is None else f"{row.speedup:.1f}×",
            )
        out.print(table)
        if not scenario.discriminates:
            out.print(
                "[yellow]the original already matches retrain within the noise floor: "
                "this scenario cannot tell removal from no removal[/yellow]"
            )
        for note in scenario.skipped:
            out.print(f"[dim]not run — {note}[/dim]")


@click.command("methods")
@json_option
def list_methods(as_json: bool) -> None:
    """List the registered unlearning methods with their parameters and defaults."""
    from erasekit.unlearn import METHODS

    if as_json:
        write_json([{"name": i.name, "exact": i.exact, "summary": i.summary, "params": i.parameter_defaults()} for i in METHODS])
        return
    for info in METHODS:
        defaults = ", ".join(f"{k}={v}" for k, v in info.parameter_defaults().items()) or "uses the original's recipe"
        out.print(f"[bold]{info.name}[/bold] — {info.summary} [dim]({defaults})[/dim]", highlight=False, soft_wrap=True)


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("erasekit-demo"),
    help="Directory for report.json and report.html.",
)
@click.option("--seeds", type=click.IntRange(min=1), default=3, help="Seeds per scenario.")
@device_options
def demo(out_dir: Path, seeds: int, device: str, precision: str) -> None:
    """Forget a class and a random 10 % of scikit-learn's bundled digits with every method."""
    from erasekit.data import ForgetSpec, load_digits
    from erasekit.models import ModelSpec
    from erasekit.pipelines.unlearning import ExperimentConfig, OriginalModel, Scenario, run_experiment
    from erasekit.report import write_report
    from erasekit.training import Recipe
    from erasekit.unlearn import parse_method_list

    where = resolve_device(device)
    check_out_dir(out_dir)
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
        command=command_line(),
        fit_methods_to_scenario=True,
        device=str(where),
        precision=precision,
    )
    report = run_experiment(config)
    diffusion = _demo_diffusion()
    paths = write_report(report, out_dir, diffusion)
    print_summary(report)
    out.print(
        f"wrote {' and '.join(map(str, paths[:2]))}" + (f" and {out_dir / 'diffusion' / 'report.html'}" if diffusion else "")
    )


def _demo_diffusion() -> dict[str, bytes]:
    """Erase "seven" from the shipped diffusion testbed with UCE and negative guidance η = 1 (about 1 min); skipped, saying
    why, without diffusers. (Plain UCE maps seven onto the unconditional branch, which draws sevens at their base rate.)
    10 seeds per phrasing: at 2, one sample of another digit is 12.5 points, four times the 3-point bar."""
    from erasekit.core.errors import MissingExtraError
    from erasekit.report import render_report

    try:
        from erasekit.generative.uce import UCEParams
        from erasekit.models.diffusion_testbed import load_testbed
        from erasekit.pipelines.diffusion_erasure import run_diffusion_erasure

        testbed = load_testbed()
    except MissingExtraError as exc:
        out.print(f"[yellow]note:[/yellow] diffusion demo skipped: {exc}", highlight=False)
        return {}
    report, _ = run_diffusion_erasure(
        testbed,
        ["seven"],
        ["uce"],
        params={"uce": UCEParams(negative_guidance=1.0)},
        seeds_per_prompt=10,
        attack_seeds=1,
        command=command_line(),
    )
    row = report.methods[0]
    out.print(
        f"diffusion testbed, erase 'seven' with uce (negative_guidance=1): {row.verdict} — drawn in {row.erased_accuracy_fit:.0%} (fit) / "
        f"{row.erased_accuracy_held_out:.0%} (held-out phrasings) of samples, worst other digit {0.0 - row.worst_preserved_drop + 0.0:+.1f} pts, "
        + (f"worst style {0.0 - row.worst_style_drop + 0.0:+.1f} pts, " if row.worst_style_drop is not None else "")
        + f"{row.seconds:.2f} s"
    )
    return {f"diffusion/{name}": payload for name, payload in render_report(report).items()}
