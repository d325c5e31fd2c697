"""The erasekit command: happy paths, and one test per bad input (exit 2, one line, nothing written)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import QUICK_RECIPE, require_shared, run_cli
from erasekit.cli import main
from erasekit.models import ModelSpec
from erasekit.training import save_model

run = run_cli


def test_train_writes_model_and_sidecar(capsys, tmp_path):
    code, out, _ = run(
        capsys, "train", "--data", "digits", "--model", "mlp", "--epochs", "2", "--out", tmp_path / "m.safetensors"
    )
    assert code == 0 and "test acc" in out
    sidecar = json.loads((tmp_path / "m.json").read_text())
    assert sidecar["recipe"]["epochs"] == 2 and sidecar["data"]["spec"] == "digits"
    assert {"train_acc", "test_acc"} == set(sidecar["metrics"])


def test_unlearn_with_a_model_file(capsys, tmp_path, model_file):
    out_dir = tmp_path / "report"
    code, out, err = run(
        capsys,
        "unlearn",
        "--data",
        "digits",
        "--model",
        model_file,
        "--forget",
        "class=3",
        "--methods",
        "ssd,salun",
        "--param",
        "salun.mask_ratio=0.3",
        "--param",
        "salun.epochs=1",
        "--out",
        out_dir,
    )
    assert code == 0, err
    assert "retrain (exact)" in out and "original (no unlearning)" in out
    report = json.loads((out_dir / "report.json").read_text())
    methods = {m["name"]: m for m in report["scenarios"][0]["methods"]}
    assert methods["salun"]["params"]["mask_ratio"] == 0.3
    assert report["scenarios"][0]["scenario"]["pretrained"] is True
    assert (out_dir / "report.html").stat().st_size > 10_000


def test_unlearn_json_output_and_index_file(capsys, tmp_path, model_file, digits):
    rows = tmp_path / "rows.txt"
    rows.write_text("\n".join(str(r) for r in digits.train_rows[:25]))
    code, out, err = run(
        capsys,
        "unlearn",
        "--data",
        "digits",
        "--model",
        model_file,
        "--forget",
        f"indices={rows}",
        "--methods",
        "ssd",
        "--out",
        tmp_path / "r",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["scenarios"][0]["scenario"]["forget"]["size"] == 25


def test_unlearn_tunes_and_caches_references(capsys, tmp_path):
    args = ["unlearn", "--data", "digits", "--forget", "class=3", "--methods", "finetune", "--epochs", "3"]
    cache = tmp_path / "cache"
    code, out, err = run(capsys, *args, "--tune", "2", "--cache", cache, "--out", tmp_path / "a")
    assert code == 0, err
    assert "finetune+tuned" in out
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    tuned = {m["name"]: m for m in report["scenarios"][0]["methods"]}["finetune+tuned"]
    assert tuned["tuning"][0]["budget"] == 2 and len(tuned["tuning"][0]["trials"]) == 2
    entries = sorted(cache.rglob("*.safetensors"))
    assert len(entries) == 4  # original, retrain, independent retrain, the proxy retrain
    # the same request again trains nothing new and gives the same reference
    code, _, err = run(capsys, *args, "--cache", cache, "--out", tmp_path / "b")
    assert code == 0, err
    assert sorted(cache.rglob("*.safetensors")) == entries
    again = json.loads((tmp_path / "b" / "report.json").read_text())
    assert (
        again["scenarios"][0]["reference"]["runs"][0]["weights_sha256"]
        == report["scenarios"][0]["reference"]["runs"][0]["weights_sha256"]
    )


def test_unlearn_refuses_a_corrupted_cache_entry(capsys, tmp_path):
    args = ["unlearn", "--data", "digits", "--forget", "class=3", "--methods", "finetune", "--epochs", "2"]
    cache = tmp_path / "cache"
    assert run(capsys, *args, "--cache", cache, "--out", tmp_path / "a")[0] == 0
    entry = sorted(cache.rglob("*.safetensors"))[0]
    entry.write_bytes(entry.read_bytes()[:-1] + b"x")
    code, _, err = run(capsys, *args, "--cache", cache, "--out", tmp_path / "b")
    assert code == 2 and "does not match its record" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b" / "report.json").exists()


def test_methods_lists_all_with_defaults(capsys):
    code, out, _ = run(capsys, "methods")
    assert code == 0
    for name in ("retrain", "salun", "ssd", "lfssd", "scrub", "boundary_shrink", "l1_sparse"):
        assert name in out
    assert "mask_ratio=0.5" in out
    code, out, _ = run(capsys, "methods", "--json")
    assert {m["name"] for m in json.loads(out)} >= {"salun", "retrain"}


def test_no_arguments_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 0 and "unlearn" in out


def write_csv(path, bad_cell=None):
    rows = ["a,b,label"] + [f"{i % 7},{i % 5},{i % 2}" for i in range(60)]
    if bad_cell:
        rows.append(f"1,{bad_cell},0")
    path.write_text("\n".join(rows) + "\n")
    return path


def bad_model_file(tmp_path, trained_mlp, digits, kind):
    path = tmp_path / f"{kind}.safetensors"
    if kind == "wrong_outputs":
        spec = ModelSpec("mlp", digits.input_shape, 5)
        model = spec.build(seed=0)
        save_model(model, path, spec, QUICK_RECIPE, "digits", digits.sha256(), seed=0)
        return path
    save_model(trained_mlp, path, ModelSpec("mlp", digits.input_shape, 10), QUICK_RECIPE, "digits", digits.sha256(), seed=0)
    if kind == "tampered":
        data = bytearray(path.read_bytes())
        data[-5] ^= 0x01
        path.write_bytes(bytes(data))
    return path


BAD_CASES = {
    "unknown method": (["--methods", "saluun"], "did you mean 'salun'"),
    "empty forget set": (["--forget", "indices={empty}"], "empty"),
    "index out of range": (["--forget", "indices={huge}"], "out of range"),
    "duplicated index": (["--forget", "indices={dupes}"], "more than once"),
    "missing class": (["--forget", "class=11"], "class 11 does not exist"),
    "whole training set": (["--forget", "class=0,1,2,3,4,5,6,7,8,9"], "whole training set"),
    "bad forget spec": (["--forget", "everything"], "cannot parse forget spec"),
    "output size mismatch": (["--model", "{wrong_outputs}"], "5.*10 classes"),
    "tampered model file": (["--model", "{tampered}"], "does not match its sidecar"),
    "model from other data": (["--model", "{other_data}"], "trained on different data"),
    "nan in csv": (["--data", "csv:{nan_csv}", "--target", "label"], "NaN/inf"),
    "inf in csv": (["--data", "csv:{inf_csv}", "--target", "label"], "NaN/inf"),
    "unreadable data file": (["--data", "csv:{missing}", "--target", "label"], "cannot read"),
    "truncated mnist": (["--data", "mnist:{mnist_dir}"], "truncated"),
    "unknown data spec": (["--data", "imagenet"], "unknown data spec"),
    "csv without target": (["--data", "csv:{good_csv}"], "--target"),
    "unwritable out": (["--out", "{blocked}/report"], "cannot write"),
    "bad param": (["--methods", "salun", "--param", "salun.mask_ratio=2"], "mask_ratio"),
    "bad option value": (["--seeds", "0"], "--seeds"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_exits_2_with_one_line(case, capsys, tmp_path, model_file, trained_mlp, digits):
    gz_dir = tmp_path / "mnist"
    gz_dir.mkdir()
    import gzip

    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        (gz_dir / name).write_bytes(
            gzip.compress(b"\x00\x00\x08\x03\x00\x00\x00\x05\x00\x00\x00\x1c\x00\x00\x00\x1c" + b"\x00" * 100)
        )
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "huge.txt").write_text("99999\n")
    (tmp_path / "dupes.txt").write_text(f"{digits.train_rows[0]}\n{digits.train_rows[0]}\n")
    (tmp_path / "blocked").write_text("a file, not a directory")
    other_csv = write_csv(tmp_path / "other.csv")
    paths = {
        "empty": tmp_path / "empty.txt",
        "huge": tmp_path / "huge.txt",
        "dupes": tmp_path / "dupes.txt",
        "wrong_outputs": bad_model_file(tmp_path, trained_mlp, digits, "wrong_outputs"),
        "tampered": bad_model_file(tmp_path, trained_mlp, digits, "tampered"),
        "other_data": tmp_path / "other.safetensors",
        "nan_csv": write_csv(tmp_path / "nan.csv", "nan"),
        "inf_csv": write_csv(tmp_path / "inf.csv", "inf"),
        "good_csv": other_csv,
        "missing": tmp_path / "missing.csv",
        "mnist_dir": gz_dir,
        "blocked": tmp_path / "blocked",
    }
    assert main(["train", "--data", f"csv:{other_csv}", "--target", "label", "--epochs", "1", "--out", paths["other_data"]]) == 0
    capsys.readouterr()
    overrides, message = BAD_CASES[case]
    args = {
        "--data": "digits",
        "--model": str(model_file),
        "--forget": "class=3",
        "--methods": "ssd",
        "--out": str(tmp_path / "out"),
    }
    extra = []
    for key, value in zip(overrides[::2], overrides[1::2]):
        value = value.format(**paths)
        if key in args:
            args[key] = value
        else:
            extra += [key, value]
    argv = ["unlearn"] + [x for kv in args.items() for x in kv] + extra
    code, out, err = run(capsys, *argv)
    assert code == 2, (case, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("erasekit: error:"), err
    assert "Traceback" not in err
    import re

    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "out").exists(), "a failed command must not write output"


def test_train_bad_output_path(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--data", "digits", "--out", tmp_path / "model.pt")
    assert code == 2 and ".safetensors" in err and not (tmp_path / "model.pt").exists()


def test_debug_shows_the_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "erasekit", "unlearn", "--data", "nope", "--forget", "class=1", "--out", "/tmp/x", "--debug"],
        capture_output=True,
        text=True,
        env={"ERASEKIT_PROGRESS": "0", "PATH": ""},
    )
    assert result.returncode != 0 and "Traceback" in result.stderr and "DataError" in result.stderr


def test_cli_on_real_mnist_subset(capsys, tmp_path):
    mnist = require_shared("mnist")
    code, out, err = run(
        capsys,
        "unlearn",
        "--data",
        f"mnist:{mnist}",
        "--subset",
        "2000",
        "--model",
        "mlp",
        "--epochs",
        "3",
        "--forget",
        "class=7",
        "--methods",
        "ssd,boundary_shrink",
        "--out",
        tmp_path / "r",
    )
    assert code == 0, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    scenario = report["scenarios"][0]
    assert scenario["scenario"]["data"]["n_train"] == 2000
    assert scenario["reference"]["metrics"]["forget_acc"] == 0.0
    original = next(m for m in scenario["methods"] if m["name"] == "original")
    assert original["metrics"]["forget_acc"] > 0.8  # positive control: the original knows class 7
    assert np.isfinite(scenario["reference"]["seconds"])
