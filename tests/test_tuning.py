"""The on-disk model cache, early stopping and tuning against a proxy deletion."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import QUICK_RECIPE
from erasekit.audit.tuning import (
    _best_epoch,
    _TrialMonitor,
    _with_epochs,
    candidates,
    proxy_deletion,
    search_space,
    stop_rule,
    tune,
)
from erasekit.audit.unlearning import UnlearningMetrics
from erasekit.core.errors import CacheError, ForgetSetError, MethodError
from erasekit.core.provenance import sha256_state
from erasekit.data import ForgetSpec
from erasekit.data.dataset import subset
from erasekit.pipelines.unlearning import ExperimentConfig, OriginalModel, Scenario, run_experiment
from erasekit.report import write_report
from erasekit.training import Recipe, train
from erasekit.training.cache import ModelCache, ModelKey
from erasekit.unlearn import UnlearningTask, unlearn
from erasekit.unlearn.finetune import FinetuneParams
from erasekit.unlearn.scrub import SCRUBParams


def key(seed: int = 0) -> ModelKey:
    return ModelKey("retrain", "d" * 64, "e" * 64, {"epochs": 1}, seed, "arch")


def test_cache_trains_once_and_returns_the_same_weights_and_cost(tmp_path, digits_spec):
    cache = ModelCache(tmp_path)
    calls = []

    def train():
        calls.append(1)
        return digits_spec.build(seed=3)

    first = cache.get_or_train(key(), lambda: digits_spec.build(seed=0), train)
    second = cache.get_or_train(key(), lambda: digits_spec.build(seed=0), train)
    assert len(calls) == 1 and not first.hit and second.hit
    assert sha256_state(first.model) == sha256_state(second.model)
    assert second.seconds == pytest.approx(first.seconds)  # the recorded training cost, not the load time
    third = cache.get_or_train(key(seed=1), lambda: digits_spec.build(seed=0), train)
    assert not third.hit and len(calls) == 2  # another key is another model


def test_cache_refuses_a_corrupted_entry(tmp_path, digits_spec):
    cache = ModelCache(tmp_path)
    entry = cache.get_or_train(key(), lambda: digits_spec.build(seed=0), lambda: digits_spec.build(seed=3))
    data = bytearray(entry.path.read_bytes())
    data[-1] ^= 0xFF
    entry.path.write_bytes(bytes(data))
    with pytest.raises(CacheError, match="does not match its record's SHA-256.*delete"):
        cache.get_or_train(key(), lambda: digits_spec.build(seed=0), lambda: digits_spec.build(seed=3))


def test_cache_refuses_an_entry_recorded_for_another_key(tmp_path, digits_spec):
    cache = ModelCache(tmp_path)
    other = cache.get_or_train(key(seed=1), lambda: digits_spec.build(seed=0), lambda: digits_spec.build(seed=3))
    wanted = cache.path_for(key())
    wanted.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".json"):  # another model's entry copied under this key's name
        wanted.with_suffix(suffix).write_bytes(other.path.with_suffix(suffix).read_bytes())
    with pytest.raises(CacheError, match="stored for another model"):
        cache.get_or_train(key(), lambda: digits_spec.build(seed=0), lambda: digits_spec.build(seed=3))
    wanted.with_suffix(".json").write_text("not json")
    with pytest.raises(CacheError, match="no valid record"):
        cache.get_or_train(key(), lambda: digits_spec.build(seed=0), lambda: digits_spec.build(seed=3))


def test_retrain_reference_comes_from_the_cache_on_a_second_request(tmp_path, digits, trained_mlp):
    task = UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.classes(3), recipe=QUICK_RECIPE, model_cache=tmp_path)
    first = unlearn(task, "retrain")
    again = UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.classes(3), recipe=QUICK_RECIPE, model_cache=tmp_path)
    second = unlearn(again, "retrain")
    assert first.cache_hits == 0 and second.cache_hits == 1
    assert first.weights_sha256 == second.weights_sha256
    assert second.seconds == pytest.approx(first.seconds)
    # the cached model is the one training without the cache produces (same seed, same recipe)
    uncached = unlearn(UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.classes(3), recipe=QUICK_RECIPE), "retrain")
    assert uncached.weights_sha256 == first.weights_sha256
    other = UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.classes(4), recipe=QUICK_RECIPE, model_cache=tmp_path)
    assert unlearn(other, "retrain").cache_hits == 0  # another forget set is another reference


def test_early_stopping_ends_a_method_after_the_epoch_that_met_the_signal(digits, trained_mlp):
    task = UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.random(0.1), recipe=QUICK_RECIPE)
    asked = []

    def rule(answer):
        return lambda model: asked.append(model.training) or answer

    stopped = unlearn(dataclasses.replace(task, stop_when=rule(True)), "finetune", FinetuneParams(epochs=5))
    assert asked == [False]  # asked once, with the model in eval mode
    one_epoch = unlearn(task, "finetune", FinetuneParams(epochs=1))
    assert stopped.weights_sha256 == one_epoch.weights_sha256  # the same run, cut after its first epoch
    asked.clear()
    unlearn(dataclasses.replace(task, stop_when=rule(False)), "finetune", FinetuneParams(epochs=3))
    assert len(asked) == 3


def test_class_stop_rule_fires_on_a_model_that_never_saw_the_class_and_not_on_the_original(digits, trained_mlp):
    task = UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.classes(3), recipe=QUICK_RECIPE)
    rule = stop_rule(task.forget_set, digits.test, "class", class_level=0.0)
    assert not rule(trained_mlp)  # positive control: the original still knows the class
    assert rule(unlearn(task, "retrain").model)


def test_confidence_stop_rule_separates_a_memorising_model_from_held_out_data(digits, digits_spec):
    # trained long on 150 examples, a model is far more confident on them than on held-out ones
    small = subset(digits.train, np.arange(150))
    model = train(digits_spec.build(seed=0), small, Recipe(epochs=100, batch_size=32, lr=0.1), seed=0)
    task = UnlearningTask.create(model, small, ForgetSpec.random(0.2), recipe=QUICK_RECIPE)
    assert not stop_rule(task.forget_set, digits.test, "random", class_level=0.0)(model)
    # positive control of the rule's other side: the held-out set itself is at the held-out level
    assert stop_rule(digits.test, digits.test, "random", class_level=0.0)(model)
    # hand-picked examples have no reference-free level: no early stop
    assert stop_rule(task.forget_set, digits.test, "indices", class_level=0.0) is None


def test_candidates_start_with_the_defaults_and_skip_invalid_combinations():
    pool = candidates(SCRUBParams.SEARCH_SPACE, SCRUBParams(), budget=12, seed=0)
    assert pool[0] == SCRUBParams() and len(pool) == 12 and len(set(map(repr, pool))) == 12
    assert all(p.max_steps <= p.epochs for p in pool)
    assert candidates(FinetuneParams.SEARCH_SPACE, FinetuneParams(), budget=1, seed=0) == [FinetuneParams()]
    assert (
        len(candidates(FinetuneParams.SEARCH_SPACE, FinetuneParams(), budget=1000, seed=0)) == 25
    )  # the whole grid (it holds the defaults)


def test_proxy_deletion_has_the_request_s_kind_and_size_and_avoids_the_forget_set(digits, trained_mlp):
    task = UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.random(0.1), recipe=QUICK_RECIPE)
    proxy = proxy_deletion(task, "random", digits.test)
    assert len(proxy.task.forget_indices) == len(task.forget_indices)
    assert not set(proxy.task.forget_indices) & set(task.forget_indices)
    class_task = UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.classes(3), recipe=QUICK_RECIPE)
    class_proxy = proxy_deletion(class_task, "class", digits.test)
    proxy_classes = set(np.unique(class_task.labels[class_proxy.task.forget_indices]))
    assert len(proxy_classes) == 1 and 3 not in proxy_classes
    assert class_proxy.class_level < 0.05  # a retrain never sees the proxy class


def test_tune_records_every_trial_and_picks_the_smallest_confirmed_gap(digits, trained_mlp):
    task = UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.random(0.1), recipe=QUICK_RECIPE)
    tuned = tune(task, "finetune", 3, digits.test, "random")
    assert len(tuned.trials) == 3 and tuned.trials[0].params == FinetuneParams()
    confirmed = [t for t in tuned.trials if t.confirmed_avg_gap is not None]
    assert len(confirmed) == 2 and all(t.confirmed_avg_gap >= t.proxy_avg_gap for t in confirmed)
    best = min(confirmed, key=lambda t: t.confirmed_avg_gap)
    assert tuned.proxy_avg_gap == best.confirmed_avg_gap
    assert tuned.params.lr == best.params.lr and tuned.params.epochs == best.best_epoch <= best.epochs_run
    assert all(t.params.lr <= QUICK_RECIPE.lr for t in tuned.trials)  # never faster than the original was trained
    assert "random slice" in tuned.proxy and "mean confidence" in tuned.signal


def test_tune_refuses_bad_budgets_and_untunable_methods(digits, trained_mlp):
    task = UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.random(0.1), recipe=QUICK_RECIPE)
    with pytest.raises(MethodError, match="budget"):
        tune(task, "finetune", 0, digits.test, "random")
    with pytest.raises(MethodError, match="exact"):
        tune(task, "retrain", 3, digits.test, "random")


def test_experiment_with_tuning_reports_tuned_and_untuned_rows(tmp_path, digits, digits_spec):
    config = ExperimentConfig(
        data=digits,
        data_spec="digits",
        original=OriginalModel(digits_spec, QUICK_RECIPE),
        scenarios=(Scenario("forget 10%", ForgetSpec.random(0.1)),),
        methods=("finetune", "ssd"),
        tune=2,
        compare_untuned=True,
        model_cache=ModelCache(tmp_path / "cache"),
    )
    report = run_experiment(config)
    rows = {row.name: row for row in report.scenarios[0].methods}
    assert {"finetune", "finetune+tuned", "ssd", "ssd+tuned"} <= set(rows)
    tuned = rows["finetune+tuned"]
    assert tuned.tuning and tuned.tuning[0].budget == 2 and tuned.params == tuned.tuning[0].params
    assert tuned.tuning_seconds > 0 and tuned.speedup_with_tuning < tuned.speedup
    assert rows["finetune"].tuning is None
    write_report(report, tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert "finetune+tuned" in html and "proxy deletion" in html
    # a second run reuses the originals and references from the cache
    before = config.model_cache.hits
    run_experiment(dataclasses.replace(config, methods=("finetune",), tune=0))
    assert config.model_cache.hits >= before + 3  # original, retrain, independent retrain


def test_a_fixed_random_draw_forgets_the_same_examples_in_every_seed(digits):
    labels = digits.train.y.numpy()
    fixed = ForgetSpec.parse("random=0.1,draw=7")
    assert fixed == ForgetSpec.random(0.1, draw_seed=7) and fixed.describe() == "random=0.1,draw=7"
    assert np.array_equal(fixed.resolve(labels, 10, seed=0), fixed.resolve(labels, 10, seed=5))
    per_seed = ForgetSpec.random(0.1)
    assert not np.array_equal(per_seed.resolve(labels, 10, seed=0), per_seed.resolve(labels, 10, seed=5))
    for bad in ("random=0.1,draw=x", "random=0.1,seed=1", "random=0.1,draw=-1"):
        with pytest.raises(ForgetSetError, match="draw"):
            ForgetSpec.parse(bad)


def _metrics(forget: float, retain: float = 1.0, test: float = 0.9, mia: float = 0.1) -> UnlearningMetrics:
    return UnlearningMetrics(forget_acc=forget, retain_acc=retain, test_acc=test, mia_efficacy=mia, entropy_member_rate=0.5)


def test_trial_monitor_ends_a_trial_patience_epochs_after_the_signal():
    scores = iter([_metrics(1.0), _metrics(0.95), _metrics(0.9), _metrics(0.85)])
    fires = iter([False, True, True, True])
    monitor = _TrialMonitor(lambda model: next(fires), lambda model: next(scores), patience=1)
    assert [monitor(None), monitor(None), monitor(None)] == [False, False, True]  # fired after epoch 2, stop after 3
    assert monitor.fired_at == 2 and len(monitor.history) == 3
    silent = _TrialMonitor(None, lambda model: _metrics(1.0), patience=1)
    assert not any(silent(None) for _ in range(5)) and silent.fired_at is None


def test_best_epoch_skips_damaging_epochs_and_keeps_the_smallest_gap():
    reference = _metrics(0.88)
    history = [_metrics(1.0), _metrics(0.89), _metrics(0.88, retain=0.90)]  # epoch 3 matches forget but loses 10 points
    trial = _best_epoch(FinetuneParams(), history, reference, has_epochs=True, fired=2, seconds=1.0)
    assert trial.best_epoch == 2 and trial.epochs_run == 3 and trial.stopped_early
    assert trial.proxy_avg_gap == pytest.approx(0.01 / 4)
    once = _best_epoch(SCRUBParams(), [_metrics(0.9)], reference, has_epochs=False, fired=None, seconds=1.0)
    assert once.best_epoch is None and once.epochs_run is None


def test_sgd_learning_rates_are_capped_at_the_recipe_s(digits, trained_mlp):
    task = UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.random(0.1), recipe=QUICK_RECIPE)  # lr 0.05
    space = search_space(FinetuneParams.SEARCH_SPACE, FinetuneParams(), task)
    assert list(space["lr"]) == [0.001, 0.003, 0.01, 0.03] and space["epochs"] == FinetuneParams.SEARCH_SPACE["epochs"]
    assert search_space(SCRUBParams.SEARCH_SPACE, SCRUBParams(), task) == SCRUBParams.SEARCH_SPACE  # Adam: its own scale
    slow = dataclasses.replace(task, recipe=Recipe(lr=0.0001))
    assert list(search_space(FinetuneParams.SEARCH_SPACE, FinetuneParams(), slow)["lr"]) == [0.001]  # the smallest, not none


def test_chosen_epochs_keep_scrub_valid():
    assert _with_epochs(SCRUBParams(epochs=10, max_steps=3), 2) == SCRUBParams(epochs=2, max_steps=2)
    assert _with_epochs(FinetuneParams(epochs=10), 4).epochs == 4
    assert _with_epochs(FinetuneParams(epochs=10), None).epochs == 10
