"""``erasekit erase``: the concept family (embeddings, or a table's columns and their proxies)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import click

from erasekit.cli.options import FRACTION, check_out_dir, command_line, json_option, out, resolve_device

TABLE_HELP = "A table: csv:PATH or parquet:PATH (numeric and categorical columns, header row)."


@click.command()
@click.option("--embeddings", type=click.Path(path_type=Path), default=None, help="Embeddings .npy [n, d] (float).")
@click.option(
    "--concept",
    "concepts",
    multiple=True,
    help="Embeddings: concept labels .npy [n] (classes) or [n]/[n, m] floats. --diffusion: a concept to erase (repeatable).",
)
@click.option(
    "--method",
    default=None,
    help="Embeddings: leace (default) | leace_orth | inlp | quadratic. --diffusion: uce (default) | esd_x | … or a comma list.",
)
@click.option("--diffusion", default=None, help="Erase from a diffusion model: testbed or a testbed folder.")
@click.option("--preserve", multiple=True, help="--diffusion: a concept whose images must not change (default: every other).")
@click.option("--param", "params", multiple=True, help="--diffusion: METHOD.NAME=VALUE, e.g. uce.lamb=0.1 (repeatable).")
@click.option(
    "--expand/--no-expand",
    default=True,
    help="--diffusion: name every digit in 8 more phrasings than the 6 the testbed was trained on, on both the erased and "
    "the preserved side (the held-out phrasings are never used).",
)
@click.option(
    "--seeds-per-prompt", type=click.IntRange(min=1, max=100), default=5, help="--diffusion: samples per prompt in the audit."
)
@click.option(
    "--token-attack/--no-token-attack",
    default=True,
    help="--diffusion: also run the UnlearnDiffAtk-style token-optimisation attack (about 20 s per method and concept on 2 CPU cores).",
)
@click.option(
    "--reference",
    "reference_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="--diffusion: a testbed retrained without the erased digits (`erasekit testbed reference`), judged beside the methods.",
)
@click.option("--data", default=None, help=TABLE_HELP)
@click.option("--target", default=None, help="Main-task label column of the table (utility is measured on it).")
@click.option("--remove", default=None, help="Comma-separated columns to remove from the table.")
@click.option(
    "--proxies",
    type=click.Choice(["leace", "none"]),
    default="leace",
    help="Also erase the removed columns' linear trace from the kept ones (leace), or only drop them (none).",
)
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Directory for the report and erased data."
)
@click.option("--test-fraction", type=FRACTION, default=0.3, help="Held-out share for the audit (the eraser never sees it).")
@click.option("--probes", default="linear,mlp,gbm", help="Probes to run: any of linear, mlp, gbm.")
@click.option("--n-boot", type=click.IntRange(min=100), default=1000, help="Bootstrap resamples for the 95 % CIs.")
@click.option("--seed", type=int, default=0, help="Seed for the split, probes and bootstrap.")
@click.option(
    "--apply",
    "apply_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Apply a saved eraser.safetensors (to --embeddings) or remover.safetensors (to --data rows) instead of fitting.",
)
@click.option(
    "--device",
    default="auto",
    help="Where embedding erasers are fitted and applied, or the diffusion model runs: auto | cpu | cuda | cuda:N | mps.",
)
@json_option
def erase(
    embeddings,
    concepts,
    method,
    diffusion,
    preserve,
    params,
    expand,
    seeds_per_prompt,
    token_attack,
    reference_dir,
    data,
    target,
    remove,
    proxies,
    out_dir,
    test_fraction,
    probes,
    n_boot,
    seed,
    apply_file,
    device,
    as_json,
) -> None:
    """Erase a concept from embeddings, remove columns (and their proxies) from a table, or erase concepts from a
    diffusion model; audit each against the original.

    Writes the fitted eraser (eraser.safetensors) or column remover (remover.safetensors) next to the
    report; `--apply FILE` later applies it to new rows without refitting. With --diffusion, writes the
    edited model (one folder per method, usable with `erasekit generate --model`) and the report.
    """
    from erasekit.audit.probes import PROBES
    from erasekit.concepts import eraser_info
    from erasekit.core.errors import ErasekitError
    from erasekit.report import to_json, write_report

    if diffusion is not None:
        _erase_diffusion(
            diffusion,
            concepts,
            method or "uce",
            preserve,
            params,
            expand,
            seeds_per_prompt,
            token_attack,
            reference_dir,
            out_dir,
            as_json,
            device,
        )
        return
    if len(concepts) > 1:
        raise ErasekitError("--concept takes one labels file for embeddings (several concepts only with --diffusion)")
    concept = Path(concepts[0]) if concepts else None
    method = method or "leace"
    where = resolve_device(device)
    check_out_dir(out_dir)
    if apply_file is not None:
        _apply(apply_file, embeddings, data, out_dir, where)
        return
    probe_list = tuple(p.strip() for p in probes.split(",") if p.strip())
    unknown = [p for p in probe_list if p not in PROBES]
    if unknown or not probe_list:
        raise ErasekitError(f"unknown probe {unknown[0] if unknown else '(none)'}; choose from {', '.join(PROBES)}")
    if (embeddings is None) == (data is None):
        raise ErasekitError("give either --embeddings X.npy --concept Z.npy, or --data csv:PATH --target COL --remove COLS")
    if embeddings is not None:
        import numpy as np

        from erasekit.concepts.base import eraser_bytes
        from erasekit.pipelines.concepts import erase_embeddings

        if concept is None:
            raise ErasekitError("--embeddings needs --concept Z.npy (one label per row)")
        eraser_info(method)
        x, z = _load_npy(embeddings, "embeddings"), _load_npy(concept, "concept")
        report, erased, eraser = erase_embeddings(
            x, z, method, None, test_fraction, seed, probe_list, n_boot, concept.stem, command=command_line(), device=str(where)
        )
        buffer = io.BytesIO()
        np.save(buffer, erased)
        outputs = {"erased.npy": buffer.getvalue(), "eraser.safetensors": eraser_bytes(eraser)}
    else:
        from erasekit.concepts.tabular import remover_bytes
        from erasekit.data.sources import TABLE_KINDS, DataSpec
        from erasekit.data.tables import read_table
        from erasekit.pipelines.concepts import erase_table

        source = DataSpec.parse(data, TABLE_KINDS)
        if not target or not remove:
            raise ErasekitError("a table needs --target COL and --remove COL[,COL]")
        frame = read_table(source.path)
        report, erased_frame, remover = erase_table(
            frame,
            target,
            [c.strip() for c in remove.split(",") if c.strip()],
            proxies,
            test_fraction,
            seed,
            probe_list,
            n_boot,
            command=command_line(),
        )
        outputs = {"erased.csv": erased_frame.to_csv(index=False).encode(), "remover.safetensors": remover_bytes(remover)}
    paths = write_report(report, out_dir, outputs)
    if as_json:
        sys.stdout.write(to_json(report))
        return
    for rep, verdict in report.verdicts.items():
        out.print(f"{rep}: {verdict}")
    for row in report.probes:
        r = row.result
        out.print(
            f"  {row.representation:24s} {row.target:12s} {r.probe:6s} {r.metric} {r.score:.3f} "
            f"[{r.ci_low:.3f}, {r.ci_high:.3f}] baseline {r.baseline:.3f}{'  LEAKS' if r.leaks else ''}"
        )
    for note in report.notes:
        out.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    out.print(f"wrote {', '.join(map(str, paths))}")


def _erase_diffusion(
    model, concepts, methods, preserve, params, expand, seeds_per_prompt, token_attack, reference_dir, out_dir, as_json, device
) -> None:
    """``erase --diffusion``: every method on the same concepts, one report, one edited model folder per method."""
    from erasekit.core.errors import ErasekitError
    from erasekit.generative import DIFFUSION_METHODS, edited_testbed_files, load_edited_testbed
    from erasekit.pipelines.diffusion_erasure import concept_request, run_diffusion_erasure
    from erasekit.report import to_json, write_report

    if not concepts:
        raise ErasekitError("--diffusion needs --concept NAME (e.g. --concept seven)")
    names = DIFFUSION_METHODS.parse_list(methods)
    parsed = DIFFUSION_METHODS.parse_params(list(params), names)
    concept_request(concepts, preserve, expand)  # unknown or clashing concepts fail before anything loads
    check_out_dir(out_dir)
    bed = load_edited_testbed(model, device)
    reference = load_edited_testbed(reference_dir, device) if reference_dir is not None else None
    from erasekit.audit.token_attack import TokenAttackSettings

    report, edited = run_diffusion_erasure(
        bed,
        concepts,
        names,
        preserve,
        parsed,
        seeds_per_prompt,
        command=command_line(),
        token_attack=TokenAttackSettings() if token_attack else None,
        reference=reference,
        expand=expand,
    )
    outputs = {}
    for name, erased in edited.items():
        for file, payload in edited_testbed_files(bed, erased.unet, {"method": name, "concepts": list(report.concepts)}).items():
            outputs[f"{name}/{file}"] = payload
    paths = write_report(report, out_dir, outputs)
    if as_json:
        sys.stdout.write(to_json(report))
        return
    for row in report.methods:
        out.print(
            f"{row.method}: {row.verdict} — erased digit drawn in {row.erased_accuracy_fit:.0%} (fit) / "
            f"{row.erased_accuracy_held_out:.0%} (held-out phrasings) of samples; worst other digit "
            f"{0.0 - row.worst_preserved_drop + 0.0:+.1f} pts; "
            + (f"worst style {0.0 - row.worst_style_drop + 0.0:+.1f} pts; " if row.worst_style_drop is not None else "")
            + f"FID ratio {row.fid_ratio:.2f}; {row.seconds:.1f} s"
        )
    out.print(f"wrote {paths[0].parent} (report.html, and the edited model in {', '.join(f'{n}/' for n in edited)})")


def _apply(apply_file: Path, embeddings, data, out_dir: Path, device) -> None:
    """Apply a saved eraser or remover to new rows; writes erased.npy or erased.csv (atomically) and nothing else."""
    import numpy as np

    from erasekit.core.errors import ErasekitError
    from erasekit.core.io import atomic_write_bytes, check_writable_dir

    if (embeddings is None) == (data is None):
        raise ErasekitError(
            "--apply needs either --embeddings X.npy (with an eraser file) or --data csv:PATH (with a remover file)"
        )
    if embeddings is not None:
        import torch

        from erasekit.concepts.base import load_eraser

        eraser = load_eraser(apply_file).to(device)
        if eraser.needs_labels:
            raise ErasekitError(
                f"{apply_file} is a quadratic eraser, which needs concept labels when applied; apply it in Python"
            )
        x = _load_npy(embeddings, "embeddings")
        erased = eraser(torch.as_tensor(np.asarray(x, dtype=np.float64), device=device)).cpu().numpy()
        buffer = io.BytesIO()
        np.save(buffer, erased.astype(np.asarray(x).dtype if np.asarray(x).dtype.kind == "f" else np.float64))
        rows = len(erased)
        name, payload = "erased.npy", buffer.getvalue()
    else:
        import pandas as pd

        from erasekit.concepts.tabular import load_remover
        from erasekit.data.sources import TABLE_KINDS, DataSpec
        from erasekit.data.tables import read_table

        remover = load_remover(apply_file)
        frame = read_table(DataSpec.parse(data, TABLE_KINDS).path)
        erased_frame = pd.DataFrame(remover.transform(frame), columns=remover.get_feature_names_out(), index=frame.index)
        known = set(remover.feature_names_in_)
        for column in (c for c in frame.columns if str(c) not in known):  # e.g. the target: passed through, as at fit time
            erased_frame[column] = frame[column].to_numpy()
        rows = len(frame)
        name, payload = "erased.csv", erased_frame.to_csv(index=False).encode()
    check_writable_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_dir / name, payload)
    out.print(f"applied {apply_file.name} to {rows:,} rows: wrote {out_dir / name}")


def _load_npy(path: Path, what: str):
    import numpy as np

    from erasekit.core.errors import DataError

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(
            f"cannot read {what} file {path}: {str(exc).splitlines()[0]} (a .npy array without objects is expected)"
        ) from None
