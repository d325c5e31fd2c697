"""`unlearn --save-model`: the new model and its deletion receipt; `--device` and `--precision` on the commands."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from conftest import run_cli
from erasekit.core.provenance import sha256_state
from erasekit.report.receipt import ids_sha256
from erasekit.training import load_model

run = run_cli


def test_save_model_writes_weights_sidecar_and_a_receipt_that_checks_out(capsys, tmp_path, model_file, digits):
    rows = [int(digits.train_rows[i]) for i in (5, 17, 40, 41)]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(map(str, rows)) + "\n")
    save_dir, out_dir = tmp_path / "delivered", tmp_path / "report"
    code, out, err = run(
        capsys,
        "unlearn",
        "--data",
        "digits",
        "--model",
        model_file,
        "--forget",
        f"indices={ids_file}",
        "--methods",
        "finetune",
        "--param",
        "finetune.epochs=1",
        "--out",
        out_dir,
        "--save-model",
        save_dir,
        "--request-id",
        "DSR-2026-0042",
        "--device",
        "cpu",
    )
    assert code == 0, err
    words = " ".join(out.split())  # rich wraps long paths
    assert "request DSR-2026-0042" in words and "4 examples forgotten by finetune" in words
    receipt = json.loads((save_dir / "receipt.json").read_text())
    assert receipt["request_id"] == "DSR-2026-0042" and receipt["method"] == "finetune"
    assert receipt["forgotten"]["ids"] == sorted(rows), "ids are the data's row numbers, not training positions"
    expected_hash = hashlib.sha256("".join(f"{r}\n" for r in sorted(rows)).encode()).hexdigest()
    assert receipt["forgotten"]["ids_sha256"] == expected_hash == ids_sha256(rows)
    assert receipt["params"]["epochs"] == 1
    saved = load_model(save_dir / "model.safetensors")
    assert sha256_state(saved.model) == receipt["new_weights_sha256"]
    assert hashlib.sha256((save_dir / "model.safetensors").read_bytes()).hexdigest() == receipt["new_weights_file_sha256"]
    assert receipt["original_weights_sha256"] == load_model(model_file).weights_sha256
    assert receipt["new_weights_sha256"] != receipt["original_weights_sha256"], "the delivered model must be the new one"
    assert receipt["verdict"] in ("matches_retrain", "under_forgets", "over_forgets", "damaged", "no_change", "diverged")
    assert receipt["started_at"] <= receipt["finished_at"] and receipt["device"] == "cpu"
    report = json.loads((out_dir / "report.json").read_text())
    assert report["receipt"] == receipt and report["schema"].endswith("/4")
    assert json.loads((save_dir / "model.json").read_text())["unlearned"]["forgotten_ids_sha256"] == expected_hash


def test_save_model_can_deliver_the_exact_retrain(capsys, tmp_path, model_file):
    code, _, err = run(
        capsys, "unlearn", "--data", "digits", "--model", model_file, "--forget", "class=3", "--methods", "retrain",
        "--out", tmp_path / "r", "--save-model", tmp_path / "m", "--epochs", "2",
    )  # fmt: skip
    assert code == 0, err
    receipt = json.loads((tmp_path / "m" / "receipt.json").read_text())
    assert receipt["method"] == "retrain" and receipt["verdict"] == "reference" and receipt["forgotten"]["kind"] == "class"


def test_save_model_with_several_methods_is_refused_and_writes_nothing(capsys, tmp_path):
    code, out, err = run(
        capsys, "unlearn", "--data", "digits", "--forget", "class=3", "--methods", "ssd,salun",
        "--out", tmp_path / "r", "--save-model", tmp_path / "m",
    )  # fmt: skip
    assert code == 2 and "--save-model delivers one method's model" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without a GPU")
def test_device_cuda_without_a_gpu_is_one_line_and_exit_2(capsys, tmp_path):
    for command in (
        ["unlearn", "--data", "digits", "--forget", "class=3", "--methods", "ssd", "--out", tmp_path / "r"],
        ["train", "--data", "digits", "--out", tmp_path / "m.safetensors"],
        ["demo", "--out", tmp_path / "d"],
    ):
        code, _, err = run(capsys, *command, "--device", "cuda:0")
        assert code == 2 and "no CUDA GPU" in err and len(err.strip().splitlines()) == 1, command
    assert not any(tmp_path.iterdir())


def test_unknown_device_is_refused(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--data", "digits", "--out", tmp_path / "m.safetensors", "--device", "gpu7")
    assert code == 2 and "unknown device 'gpu7'" in err


def test_train_with_bf16_autocast_on_cpu(capsys, tmp_path):
    code, out, err = run(
        capsys, "train", "--data", "digits", "--epochs", "3", "--out", tmp_path / "m.safetensors",
        "--device", "cpu", "--precision", "bf16",
    )  # fmt: skip
    assert code == 0, err
    assert "(cpu)" in out
    saved = load_model(tmp_path / "m.safetensors")
    assert next(saved.model.parameters()).dtype == torch.float32, "autocast keeps fp32 master weights"


def test_chained_deletions_retrain_without_every_earlier_request(capsys, tmp_path, model_file, digits):
    first_rows = [int(digits.train_rows[i]) for i in (3, 9, 27)]
    second_rows = [int(digits.train_rows[i]) for i in (40, 41)]
    (tmp_path / "first.txt").write_text(" ".join(map(str, first_rows)))
    (tmp_path / "second.txt").write_text(" ".join(map(str, second_rows)))
    common = ["--data", "digits", "--methods", "retrain"]
    code, _, err = run(capsys, "unlearn", *common, "--model", model_file, "--forget", f"indices={tmp_path / 'first.txt'}",
                       "--out", tmp_path / "r1", "--save-model", tmp_path / "d1")  # fmt: skip
    assert code == 0, err
    code, out, err = run(capsys, "unlearn", *common, "--model", tmp_path / "d1", "--forget", f"indices={tmp_path / 'second.txt'}",
                         "--out", tmp_path / "r2", "--save-model", tmp_path / "d2", "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    scenario = report["scenarios"][0]["scenario"]
    assert scenario["data"]["n_train"] == len(digits.train) - 3, "the first request's rows are gone from the second's world"
    assert report["receipt"]["forgotten"]["ids"] == sorted(second_rows), "a receipt lists its own request"
    sidecar = json.loads((tmp_path / "d2" / "model.json").read_text())
    assert sidecar["unlearned"]["forgotten_rows"] == sorted(first_rows + second_rows), "the sidecar carries every request"
    code, _, err = run(capsys, "unlearn", *common, "--model", tmp_path / "d2", "--forget", f"indices={tmp_path / 'first.txt'}",
                       "--out", tmp_path / "r3")  # fmt: skip
    assert code == 2 and f"row {min(first_rows)} was already forgotten by this model" in err
