"""Shared fixtures: digits, a small trained MLP, fast method parameters."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

os.environ.setdefault("ERASEKIT_PROGRESS", "0")

from erasekit.core import progress
from erasekit.data import load_digits
from erasekit.models import ModelSpec
from erasekit.training import Recipe, train
from erasekit.unlearn import available_methods, method_info

progress.set_enabled(False)

QUICK_RECIPE = Recipe(epochs=12, batch_size=64, lr=0.05)


def shared_data_dir() -> Path:
    return Path(os.environ.get("ERASEKIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def require_shared(name: str) -> Path:
    """Real data from ../shared/data; missing data fails in CI and skips (with the reason) locally."""
    path = shared_data_dir() / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing; CI must run with ../shared beside the clone")
        pytest.skip(f"{path} not available (set ERASEKIT_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def digits():
    return load_digits()


@pytest.fixture(scope="session")
def digits_spec(digits):
    return ModelSpec("mlp", digits.input_shape, digits.num_classes)


@pytest.fixture(scope="session")
def trained_mlp(digits, digits_spec):
    """A converged MLP on digits (test accuracy ≈ 0.97). Never mutate it in tests."""
    model = digits_spec.build(seed=0)
    return train(model, digits.train, QUICK_RECIPE, seed=0)


def fast_params(name: str):
    """Each method's defaults with a single epoch, to keep contract tests fast."""
    params = method_info(name).default_params()
    if any(f.name == "epochs" for f in dataclasses.fields(params)):
        changes = {"epochs": 1}
        if any(f.name == "max_steps" for f in dataclasses.fields(params)):
            changes["max_steps"] = 1
        params = dataclasses.replace(params, **changes)
    return params


ALL_METHODS = available_methods()


def run_cli(capsys, *args):
    """Run the erasekit command in-process: (exit code, stdout, stderr)."""
    from erasekit.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="session")
def model_file(tmp_path_factory, trained_mlp, digits_spec, digits):
    """The trained digits MLP saved as a model file (safetensors + sidecar)."""
    from erasekit.training import save_model

    path = tmp_path_factory.mktemp("model") / "digits.safetensors"
    save_model(trained_mlp, path, digits_spec, QUICK_RECIPE, "digits", digits.sha256(), seed=0)
    return path


POSTGRES_ENV = "ERASEKIT_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL URL for the ledger tests: ``$ERASEKIT_TEST_POSTGRES_URL`` if set, else a private
    server started here from the installed binaries; skipped, with the reason, where neither works."""
    from erasekit.ledger.scratch_postgres import PostgresUnavailable, scratch_postgres

    url = os.environ.get(POSTGRES_ENV)
    if url:
        yield url
        return
    try:
        server = scratch_postgres()  # under /tmp: the server user must be able to reach it
        url = server.__enter__()
    except PostgresUnavailable as exc:
        pytest.skip(f"{POSTGRES_ENV} is not set and {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)
