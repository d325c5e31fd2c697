"""Your own model and data: devices, dict batches, DataLoaders, Hugging Face outputs, bf16, your recipe."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from conftest import QUICK_RECIPE, fast_params
from erasekit.audit.metrics import accuracy, predict_logits
from erasekit.core.device import DeviceError, model_device, resolve_device
from erasekit.core.errors import DataError, MethodError, ModelError
from erasekit.data import ArrayDataset, ForgetSpec, UserDataset, as_dataset, labels_of
from erasekit.models.adapter import Classifier, as_classifier
from erasekit.training import Recipe, train
from erasekit.unlearn import UnlearningTask, method_info, unlearn

FINE_TUNING = ("finetune", "gradient_ascent", "random_label", "salun", "l1_sparse", "neggrad_plus", "scrub", "ssd", "lfssd")

# ---------------------------------------------------------------- a tiny token-classification problem


def token_problem(n: int = 160, length: int = 8, vocab: int = 40, seed: int = 0):
    """Sequences of token ids; the label says whether token 7 occurs (a model must read the tokens)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, size=(n, length))
    labels = rng.integers(0, 2, size=n)
    ids[labels == 1, rng.integers(0, length, size=int(labels.sum()))] = 7
    ids[labels == 0] = np.where(ids[labels == 0] == 7, 8, ids[labels == 0])
    return torch.as_tensor(ids), torch.as_tensor(labels)


class DictTokens(Dataset):
    """A Hugging Face-style dataset: each example is a dict of input_ids, attention_mask and labels."""

    def __init__(self, ids, labels):
        self.ids, self.labels = ids, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones_like(self.ids[i]), "labels": self.labels[i]}


class BagOfTokens(nn.Module):
    """An embedding-bag text classifier over integer token ids."""

    def __init__(self, vocab: int = 40, dim: int = 16, classes: int = 2):
        super().__init__()
        self.bag = nn.EmbeddingBag(vocab, dim, mode="mean")
        self.head = nn.Linear(dim, classes)

    def forward(self, ids):
        return self.head(self.bag(ids))


def tiny_bert(vocab: int = 40):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=vocab,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config)


ADAMW = Recipe(
    epochs=25, batch_size=32, lr=1e-2, name="adamw", optimizer_factory=lambda params, lr: torch.optim.AdamW(params, lr=lr)
)


@pytest.fixture(scope="module")
def bert_task():
    ids, labels = token_problem()
    model = train(tiny_bert(), DictTokens(ids, labels), ADAMW, seed=0)
    loader = DataLoader(DictTokens(ids, labels), batch_size=16, shuffle=True)  # its shuffling must not matter
    return UnlearningTask.create(model, loader, ForgetSpec.classes(1), recipe=ADAMW)


def test_hugging_face_classifier_trains_and_unlearns_from_a_dataloader(bert_task):
    transformers = pytest.importorskip("transformers")
    logits, y = predict_logits(bert_task.model, bert_task.train)
    assert accuracy(logits, y) > 0.9, "positive control: the tiny BERT must have learned the token rule"
    assert bert_task.labels.tolist() == labels_of(bert_task.train).tolist()
    for name in ("retrain", "finetune", "salun", "scrub", "ssd"):
        params = None if name == "retrain" else fast_params(name)
        result = unlearn(bert_task, name, params)
        assert isinstance(result.model, transformers.BertForSequenceClassification), name
        assert result.weights_sha256 != result.original_weights_sha256, f"{name} changed nothing"
    retrained = unlearn(bert_task, "retrain").model
    forget_logits, _ = predict_logits(retrained, bert_task.forget_set)
    assert (forget_logits.argmax(1) == 1).float().mean() < 0.2, "retrain never saw class 1, so it predicts class 0"


def test_embedding_bag_model_keeps_integer_token_inputs():
    ids, labels = token_problem()
    data = ArrayDataset(ids, labels)
    assert data.x.dtype == torch.int64, "token ids must stay integers"
    model = train(BagOfTokens(), data, Recipe(epochs=30, batch_size=32, lr=0.5), seed=0)
    assert accuracy(*predict_logits(model, data)) > 0.85
    task = UnlearningTask.create(model, data, ForgetSpec.random(0.1), recipe=Recipe(epochs=30, batch_size=32, lr=0.5))
    for name in ("finetune", "gradient_ascent", "neggrad_plus", "l1_sparse"):
        assert isinstance(unlearn(task, name, fast_params(name)).model, BagOfTokens)


def test_boundary_shrink_refuses_token_inputs():
    ids, labels = token_problem()
    model = BagOfTokens()
    task = UnlearningTask.create(model, ArrayDataset(ids, labels), ForgetSpec.classes(1))
    with pytest.raises(MethodError, match="boundary_shrink .* floating tensor"):
        unlearn(task, "boundary_shrink", fast_params("boundary_shrink"))


# ---------------------------------------------------------------- data forms


def test_dataloader_iterable_and_dict_dataset_give_the_same_examples(digits):
    small = digits.train.subset(np.arange(50))
    loader = DataLoader(small, batch_size=7, shuffle=True)
    from_loader = as_dataset(loader)
    assert isinstance(from_loader, UserDataset)
    assert labels_of(from_loader).tolist() == small.y.tolist(), "a DataLoader's shuffling must not reorder positions"
    batches_list = [(small.x[i : i + 10], small.y[i : i + 10]) for i in range(0, 50, 10)]
    from_iterable = as_dataset(iter(batches_list))
    assert len(from_iterable) == 50 and labels_of(from_iterable).tolist() == small.y.tolist()
    x, y = from_iterable[3]
    assert torch.equal(x, small.x[3]) and int(y) == int(small.y[3])


def test_dict_dataset_label_key_is_found_or_named():
    ids, labels = token_problem(n=20)
    data = as_dataset(DictTokens(ids, labels))
    inputs, label = data[0]
    assert set(inputs) == {"input_ids", "attention_mask"} and int(label) == int(labels[0])

    class Renamed(DictTokens):
        def __getitem__(self, i):
            item = super().__getitem__(i)
            return {"tokens": item["input_ids"], "answer": item["labels"]}

    with pytest.raises(DataError, match="no label .* label_key"):
        as_dataset(Renamed(ids, labels))
    assert labels_of(as_dataset(Renamed(ids, labels), label_key="answer")).tolist() == labels.tolist()
    with pytest.raises(DataError, match="label key 'nope'"):
        as_dataset(Renamed(ids, labels), label_key="nope")


def test_batches_of_different_lengths_are_refused_with_the_fix():
    batches_list = [{"input_ids": torch.ones(4, 5, dtype=torch.long), "labels": torch.zeros(4)}]
    batches_list.append({"input_ids": torch.ones(4, 7, dtype=torch.long), "labels": torch.zeros(4)})
    with pytest.raises(DataError, match="pass the DataLoader"):
        as_dataset(batches_list)


def test_non_dataset_input_is_refused():
    with pytest.raises(DataError, match="Dataset, a DataLoader or an iterable"):
        as_dataset(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------- outputs


class DictOutput(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return {"logits": self.inner(x), "hidden": x}


class OddOutput(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return {"scores": self.inner(x)}


def test_dict_outputs_and_a_custom_logits_extractor(digits, trained_mlp):
    expected = predict_logits(trained_mlp, digits.test)[0]
    assert torch.equal(predict_logits(DictOutput(trained_mlp), digits.test)[0], expected)
    odd = OddOutput(trained_mlp)
    with pytest.raises(ModelError, match="pass logits="):
        predict_logits(odd, digits.test)
    assert torch.equal(predict_logits(odd, digits.test, logits=lambda out: out["scores"])[0], expected)
    task = UnlearningTask.create(
        copy.deepcopy(odd), digits.train, [0, 1, 2], recipe=QUICK_RECIPE, logits=lambda out: out["scores"]
    )
    assert isinstance(unlearn(task, "finetune", fast_params("finetune")).model, OddOutput)


# ---------------------------------------------------------------- devices and precision


def test_every_method_runs_where_the_model_is_meta_device(digits, trained_mlp):
    """The meta device fails on any CPU tensor meeting a meta tensor, exactly as CUDA does."""
    meta = copy.deepcopy(trained_mlp).to("meta")
    small = digits.train.subset(np.arange(120))
    task = UnlearningTask.create(meta, small, [0, 1, 2], recipe=Recipe(epochs=1))
    assert task.device.type == "meta"
    # boundary_shrink and sisa read results back to the CPU (new labels, checkpoints), which meta cannot
    for name in ("retrain", *FINE_TUNING):
        info = method_info(name)
        model = info.fn(task, info.default_params() if name == "retrain" else fast_params(name))
        assert model_device(model).type == "meta", name
    trained = train(copy.deepcopy(trained_mlp).to("meta"), small, Recipe(epochs=1), seed=0)
    assert model_device(trained).type == "meta"


def test_cpu_tensors_do_not_reach_a_meta_model_without_the_wrapper(digits, trained_mlp):
    """Positive control for the meta test: the raw model does fail on CPU batches."""
    meta = copy.deepcopy(trained_mlp).to("meta")
    with pytest.raises(RuntimeError, match="meta"):
        meta(digits.train.x[:2])
    assert Classifier(meta)(digits.train.x[:2]).device.type == "meta"


def test_a_model_split_across_devices_gets_a_message_that_says_so(trained_mlp, digits):
    split = copy.deepcopy(trained_mlp)
    split[1].to("meta")
    with pytest.raises(DeviceError, match="several devices"):
        UnlearningTask.create(split, digits.train, [0])
    with pytest.raises(DeviceError, match="several devices"):
        as_classifier(split)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            resolve_device("cuda:0")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu9")


def test_bf16_model_and_mixed_precision(digits, trained_mlp):
    half = copy.deepcopy(trained_mlp).to(torch.bfloat16)
    logits, labels = predict_logits(half, digits.test)
    assert logits.dtype == torch.float32 and accuracy(logits, labels) > 0.9
    task = UnlearningTask.create(half, digits.train, [0, 1, 2], recipe=QUICK_RECIPE)
    result = unlearn(task, "finetune", fast_params("finetune"))
    assert next(result.model.parameters()).dtype == torch.bfloat16
    autocast = Classifier(copy.deepcopy(trained_mlp), precision="bf16")
    mixed = autocast(digits.test.x[:64])
    assert mixed.dtype == torch.float32
    full = trained_mlp(digits.test.x[:64])
    assert not torch.equal(mixed, full), "positive control: autocast must actually compute in bf16"
    assert (mixed.argmax(1) == full.argmax(1)).float().mean() > 0.95
    with pytest.raises(DeviceError, match="unknown precision"):
        Classifier(trained_mlp, precision="fp8")


# ---------------------------------------------------------------- your recipe


def test_the_recipe_loss_and_optimiser_reach_retrain_and_every_fine_tuning_method(digits, digits_spec):
    calls: dict[str, list] = {"loss": [], "optimizer": [], "step": []}

    def smoothed(logits, labels):
        calls["loss"].append(1)
        return nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)

    def adam(parameters, lr):
        calls["optimizer"].append(lr)
        return torch.optim.Adam(parameters, lr=lr)

    recipe = Recipe(epochs=1, batch_size=64, lr=1e-3, loss=smoothed, optimizer_factory=adam, name="smoothed-adam")
    model = train(digits_spec.build(seed=0), digits.train, recipe, seed=0)
    assert calls["loss"] and calls["optimizer"] == [1e-3]
    task = UnlearningTask.create(model, digits.train, [0, 1, 2], recipe=recipe)
    for name in ("retrain", "finetune", "gradient_ascent", "random_label", "salun", "l1_sparse", "neggrad_plus", "scrub"):
        calls["loss"].clear()
        calls["optimizer"].clear()
        unlearn(task, name, None if name == "retrain" else fast_params(name))
        assert calls["loss"], f"{name} did not use the recipe's loss"
        assert calls["optimizer"], f"{name} did not use the recipe's optimiser"
    assert recipe.to_dict()["loss"].endswith("smoothed") and recipe.custom_parts == ("loss", "optimizer_factory")


def test_a_whole_train_step_replaces_the_built_in_one(digits, digits_spec):
    steps = []

    def clipped_step(model, x, y, optimizer):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        steps.append(float(loss.detach()))
        return loss

    recipe = Recipe(epochs=4, train_step=clipped_step)
    model = train(digits_spec.build(seed=0), digits.train, recipe, seed=0)
    assert len(steps) == 4 * -(-len(digits.train) // 64) and steps[-1] < steps[0]
    assert accuracy(*predict_logits(model, digits.test)) > 0.8


def test_recipe_parts_must_be_callable():
    with pytest.raises(ModelError, match="Recipe.loss must be a callable"):
        Recipe(loss="cross_entropy")  # type: ignore[arg-type]


def test_custom_recipe_is_recorded_by_name_and_not_restored_from_a_file():
    recipe = Recipe(loss=nn.functional.cross_entropy, name="mine")
    saved = recipe.to_dict()
    assert saved["loss"] == "torch.nn.functional.cross_entropy" and saved["name"] == "mine"
    assert Recipe.from_dict(saved).loss is None
    assert recipe.sha256() != Recipe().sha256()


def test_int_features_are_kept_as_integers_and_the_error_says_to_cast(digits_spec):
    x = np.random.default_rng(0).integers(0, 16, size=(20, 1, 8, 8))
    data = ArrayDataset(x, np.zeros(20, dtype=int))
    with pytest.raises(DeviceError, match="cast feature arrays to float32"):
        predict_logits(digits_spec.build(seed=0), data)
    assert ArrayDataset(x.astype(np.float64), np.zeros(20, dtype=int)).x.dtype == torch.float32


def test_ctr_backbone_trains_where_it_is_meta_device():
    from erasekit.data.ctr import table_from_matrix
    from erasekit.models.ctr import CTRRecipe, CTRSpec, fresh_model, train_ctr

    rng = np.random.default_rng(0)
    x = np.column_stack([rng.integers(0, 5, 200), rng.normal(size=200)])
    y = rng.integers(0, 2, 200).astype(float)
    table = table_from_matrix(x, y, (0,), np.array([5]))
    model = fresh_model(table.fields, CTRSpec("deepfm", device="meta"), seed=0)
    trained = train_ctr(model, table, None, CTRRecipe(max_epochs=1, batch_size=64))
    assert model_device(trained).type == "meta"


def test_gpu_check_reports_no_gpu_and_keeps_committed_results(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    if not torch.cuda.is_available():
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "no CUDA GPU present" in done.stdout
    refused = subprocess.run([sys.executable, str(script), "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "pass --out DIR" in refused.stdout


def test_a_list_of_examples_is_a_dataset_not_batches():
    ids, labels = token_problem(n=30)
    examples = [{"input_ids": i, "labels": y} for i, y in zip(ids, labels)]
    data = as_dataset(examples)
    assert len(data) == 30 and labels_of(data).tolist() == labels.tolist()
    pairs = [(i.float(), y) for i, y in zip(ids, labels)]
    assert len(as_dataset(pairs)) == 30
    batched = [(ids[:10].float(), labels[:10]), (ids[10:].float(), labels[10:])]
    assert len(as_dataset(batched)) == 30, "a list of (inputs, labels) batches is read as batches"


def test_unlearning_task_names_the_dict_fields(trained_mlp, digits):
    class Named(Dataset):
        def __len__(self):
            return 100

        def __getitem__(self, i):
            x, y = digits.train[i]
            return {"pixels": x, "digit": y, "note": torch.tensor(0)}

    task = UnlearningTask.create(
        DictOutputByName(trained_mlp), Named(), [0, 1], recipe=QUICK_RECIPE, label_key="digit", input_keys=["pixels"]
    )
    assert task.labels.tolist() == digits.train.y[:100].tolist()
    assert isinstance(unlearn(task, "finetune", fast_params("finetune")).model, DictOutputByName)


class DictOutputByName(nn.Module):
    """A model whose forward takes a keyword argument, as dict batches are passed."""

    def __init__(self, inner):
        super().__init__()
        self.inner = copy.deepcopy(inner)

    def forward(self, pixels):
        return self.inner(pixels)


def test_the_experiment_runs_where_a_pretrained_original_is(digits, digits_spec, trained_mlp):
    from erasekit.pipelines.unlearning import ExperimentConfig, OriginalModel, _original_model, run_device

    meta = copy.deepcopy(trained_mlp).to("meta")
    config = ExperimentConfig(
        data=digits,
        data_spec="digits",
        original=OriginalModel(digits_spec, QUICK_RECIPE, pretrained=meta),
        scenarios=(),
        methods=(),
    )
    assert run_device(config).type == "meta" and _original_model(config, 0, "") is meta, "not moved behind the user's back"
    import dataclasses

    assert run_device(dataclasses.replace(config, device="cpu")).type == "cpu"
    built = dataclasses.replace(config, original=OriginalModel(digits_spec, QUICK_RECIPE))
    assert run_device(built).type == "cpu"
