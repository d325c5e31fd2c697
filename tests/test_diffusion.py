"""Concept erasure in diffusion models: the shipped testbed, every method, the audit and its bad input.

Every "it is erased" check has its positive control: the original model draws the concept under
the same judge, prompts and seeds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import require_shared, run_cli
from erasekit.audit.generative import style_prompts
from erasekit.core.errors import MethodError, ModelError
from erasekit.generative import ConceptRequest, available_diffusion_methods, diffusion_method_info, erase_concepts
from erasekit.generative.base import cross_attention_projections
from erasekit.generative.uce import closed_form_edit
from erasekit.models.diffusion_testbed import DiffusionModel, build_unet

FAST = {"esd_x": {"iterations": 3}, "esd_u": {"iterations": 3}, "spm": {"iterations": 3}, "realera": {"lora_iterations": 3}}


class RandomTokenEncoder:
    """A stand-in text encoder with Stable Diffusion's width (768): a fixed random state per word, 8 positions."""

    hidden_size = 768

    def encode(self, prompts):
        out = []
        for prompt in prompts:
            words = (prompt.split() + ["<pad>"] * 8)[:8]
            out.append(torch.stack([torch.randn(768, generator=torch.Generator().manual_seed(hash(w) % 2**31)) for w in words]))
        return torch.stack(out)


def sd_shaped_unet(cross_attention_dim=768, cross_attention=True):
    down = ("CrossAttnDownBlock2D", "DownBlock2D") if cross_attention else ("DownBlock2D", "DownBlock2D")
    up = ("UpBlock2D", "CrossAttnUpBlock2D") if cross_attention else ("UpBlock2D", "UpBlock2D")
    config = {
        "sample_size": 8, "in_channels": 4, "out_channels": 4, "block_out_channels": [32, 64], "layers_per_block": 1,
        "down_block_types": list(down), "up_block_types": list(up), "cross_attention_dim": cross_attention_dim,
        "attention_head_dim": 8, "norm_num_groups": 32,
    }  # fmt: skip
    if not cross_attention:
        config["mid_block_type"] = None
    torch.manual_seed(0)
    return build_unet(config)


def sd_shaped_model(**unet_options):
    return DiffusionModel(
        unet=sd_shaped_unet(**unet_options),
        text_encoder=RandomTokenEncoder(),
        scheduler_config={"num_train_timesteps": 1000, "_class_name": "DDPMScheduler"},
        guidance=3.0,
        steps=4,
    )


# -- the closed forms and the distance, by hand ---------------------------------------------------
def test_the_uce_closed_form_solves_its_least_squares_problem():
    """Independent check: the UCE matrix equals numpy's least-squares solution of the stacked, weighted system."""
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(5, 4))
    erase_keys, preserve_keys = rng.normal(size=(3, 4)), rng.normal(size=(6, 4))
    targets = rng.normal(size=(3, 5))
    s_e, s_p, lamb = 1.0, 0.5, 0.3
    edited = closed_form_edit(
        torch.tensor(w0), torch.tensor(erase_keys), torch.tensor(targets), torch.tensor(preserve_keys), s_e, s_p, lamb
    ).numpy()
    # rows: √s_e (W c_i − v_i), √s_p (W c_j − W₀ c_j), √λ (W − W₀) — solve for Wᵀ column by column
    design = np.vstack([np.sqrt(s_e) * erase_keys, np.sqrt(s_p) * preserve_keys, np.sqrt(lamb) * np.eye(4)])
    rhs = np.vstack([np.sqrt(s_e) * targets, np.sqrt(s_p) * preserve_keys @ w0.T, np.sqrt(lamb) * w0.T])
    expected = np.linalg.lstsq(design, rhs, rcond=None)[0].T
    assert np.allclose(edited, expected, atol=1e-10)
    # orientation: the erased keys moved toward their targets, the preserved keys barely moved
    assert np.linalg.norm(erase_keys @ edited.T - targets) < np.linalg.norm(erase_keys @ w0.T - targets)


def test_uce_negative_guidance_sends_values_past_the_guide_and_keys_to_it():
    """With nothing preserved and a tiny λ the edit is (nearly) exact: for η = 1 the concept's value becomes
    W₀(g − (c − g)) = W₀(2g − c) and its key W₀g; for η = 0 both become the guide's (the paper's UCE)."""
    from erasekit.generative.uce import UCEParams, guided_targets

    model = sd_shaped_model()
    request = ConceptRequest(("cat",), ("cat",), ())
    c = model.encode(["cat"])[0].double()
    g = model.encode([""])[0].double()
    assert torch.allclose(guided_targets(c, g, 1.0), 2 * g - c) and torch.equal(guided_targets(c, g, 0.0), g)
    for eta in (0.0, 1.0):
        edited = erase_concepts(model, request, "uce", UCEParams(negative_guidance=eta, lamb=1e-6, preserve_scale=0.0)).unet
        original = dict(cross_attention_projections(model.unet))
        for name, linear in cross_attention_projections(edited):
            w0, w = original[name].weight.double(), linear.weight.double()
            target = (g - eta * (c - g)) if name.endswith("to_v") else g
            assert torch.allclose(c @ w.T, target @ w0.T, atol=1e-3), (name, eta)
            if eta and name.endswith("to_v"):  # orientation: away from the concept, not toward it
                assert (c @ w.T - g @ w0.T).flatten() @ (c @ w0.T - g @ w0.T).flatten() < 0


def test_the_rece_embedding_solves_its_least_squares_problem():
    """c' = argmin Σ_l ‖W_l c − W_l⁰ c_e‖² + λ‖c‖², checked against numpy's solver on the stacked system."""
    from erasekit.generative.rece import adversarial_states

    edited, original = sd_shaped_unet(), sd_shaped_unet()
    with torch.no_grad():
        for _, linear in cross_attention_projections(edited):
            linear.weight.mul_(0.5).add_(0.01)
    concept = torch.randn(3, 768, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    found = adversarial_states(edited, original, concept, reg=0.1).numpy()
    pairs = list(zip(cross_attention_projections(edited), cross_attention_projections(original)))
    design = np.vstack([e.weight.detach().double().numpy() for (_, e), _ in pairs] + [np.sqrt(0.1) * np.eye(768)])
    for row in range(3):
        rhs = np.concatenate([o.weight.detach().double().numpy() @ concept[row].numpy() for _, (_, o) in pairs] + [np.zeros(768)])
        assert np.allclose(found[row], np.linalg.lstsq(design, rhs, rcond=None)[0], atol=1e-8)


def test_frechet_distance_by_hand_and_orientation():
    from erasekit.audit.generative import frechet_distance

    a = np.array([[0.0], [2.0], [4.0]])  # mean 2, variance 4 (n − 1)
    b = np.array([[1.0], [2.0], [3.0], [6.0]])  # mean 3, variance 14/3
    expected = (2 - 3) ** 2 + 4 + 14 / 3 - 2 * np.sqrt(4 * 14 / 3)
    assert frechet_distance(a, b) == pytest.approx(expected)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(x, x + 1.0) == pytest.approx(3.0, rel=1e-6)  # a shift of 1 in 3 dimensions
    assert frechet_distance(x, rng.normal(size=(500, 3))) < frechet_distance(x, 2 * rng.normal(size=(500, 3)))


# -- nothing is tied to the testbed: every method on a random UNet with Stable Diffusion's shapes ---
@pytest.mark.parametrize("method", available_diffusion_methods())
def test_every_method_runs_on_a_stable_diffusion_shaped_unet_and_edits_a_copy(method):
    model = sd_shaped_model()
    request = ConceptRequest(("cat",), ("a photo of a cat", "a cat"), ("a photo of a dog",))
    original = {k: v.clone() for k, v in model.unet.state_dict().items()}
    info = diffusion_method_info(method)
    erased = erase_concepts(model, request, method, info.params_type(**FAST.get(method, {})))
    assert all(torch.equal(v, model.unet.state_dict()[k]) for k, v in original.items()), "the original must not change"
    if method == "safree":  # inference-time: no weight changes, the prompt's states are filtered instead
        assert erased.changed_values == 0
        x, t, states = torch.randn(1, 4, 8, 8), torch.tensor(999), model.encode(["a photo of a cat"])
        filtered, _, _ = erased.unet.filter(states)
        assert not torch.equal(filtered, states), "the concept's own prompt is filtered"
        assert erased.unet(x, t, encoder_hidden_states=states).sample.shape == x.shape
        return
    assert erased.edited_parameters and erased.changed_values > 0
    in_attn2 = [".attn2." in name for name in erased.edited_parameters]
    if method in ("uce", "esd_x"):
        assert all(in_attn2), erased.edited_parameters
    if method == "uce":
        assert all(name.endswith(("to_k.weight", "to_v.weight")) for name in erased.edited_parameters)
    if method == "esd_u":
        assert not any(in_attn2)


def test_esd_preserve_weight_keeps_the_preserved_prompts_prediction_closer_to_the_original():
    """The retain term (erasekit's option): with it, a preserved prompt's noise prediction moves less; without it (the
    paper's loss, the control) the same training moves it further (measured ratio 0.34–0.38 over three encoders)."""
    model = sd_shaped_model()
    request = ConceptRequest(("cat",), ("a photo of a cat", "a cat"), ("a photo of a dog",))
    x = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([100, 300, 600, 900])
    dog = model.encode(["a photo of a dog"] * 4)
    with torch.no_grad():
        before = model.unet(x, t, encoder_hidden_states=dog).sample

    def moved(weight: float) -> float:
        params = diffusion_method_info("esd_x").make_params({"iterations": 20, "lr": 1e-3, "preserve_weight": weight})
        unet = erase_concepts(model, request, "esd_x", params).unet
        with torch.no_grad():
            return float((unet(x, t, encoder_hidden_states=dog).sample - before).norm())

    without, with_term = moved(0.0), moved(1000.0)
    assert without > 0 and with_term < 0.6 * without, (without, with_term)


def test_an_expanded_request_names_each_digit_in_more_phrasings_but_never_the_held_out_ones():
    from erasekit.data.captions import STYLES, digit_prompts, expansion_prompts, styled_prompts
    from erasekit.pipelines.diffusion_erasure import concept_request

    expanded, digits = concept_request(["seven"])
    narrow, _ = concept_request(["seven"], expand=False)
    assert digits == (7,) and narrow.erase_prompts == tuple(digit_prompts(7))
    assert expanded.erase_prompts == (*digit_prompts(7), *expansion_prompts(7), *styled_prompts(7))
    assert len(expanded.erase_prompts) == 6 + 8 + 6 * 3 and "a handwritten seven, slanted" in expanded.erase_prompts
    assert "8" in expanded.preserve_prompts and "7" not in expanded.preserve_prompts  # the bare numeral, on both sides
    assert "number 8, with thin strokes" in expanded.preserve_prompts  # the kept digits in every style
    held_out = {p for d in range(10) for s in STYLES for p in digit_prompts(d, held_out=True, style=s)}
    assert not held_out & {*expanded.erase_prompts, *expanded.preserve_prompts}


# -- bad input ------------------------------------------------------------------------------------
def test_bad_a_unet_without_cross_attention():
    with pytest.raises(ModelError, match="no cross-attention"):
        sd_shaped_model(cross_attention=False)


def test_bad_a_text_encoder_whose_width_does_not_match_the_unet():
    with pytest.raises(ModelError, match="cross-attention dim is 384 but the text encoder's hidden size is 768"):
        sd_shaped_model(cross_attention_dim=384)


def test_bad_the_same_prompt_erased_and_preserved():
    with pytest.raises(MethodError, match="both erased and preserved"):
        ConceptRequest(("cat",), ("a cat",), ("a cat", "a dog"))


def test_bad_guidance_must_be_positive():
    model = sd_shaped_model()
    with pytest.raises(ModelError, match="guidance must be > 0"):
        model.latents(["a cat"], [0], guidance=0.0)


def test_the_registry_lists_every_method_file():
    assert {"uce", "esd_x", "esd_u"} <= set(available_diffusion_methods())
    assert cross_attention_projections(sd_shaped_unet())


# -- the shipped testbed -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def testbed():
    from erasekit.models.diffusion_testbed import load_testbed

    return load_testbed()


@pytest.fixture(scope="module")
def seven_prompts():
    from erasekit.data.captions import digit_prompts

    return [*digit_prompts(7)[:3], *digit_prompts(7, held_out=True)]


def _seven_rate(testbed, unet, prompts, seeds=(0, 1, 2, 3)) -> float:
    images = testbed.sample([p for p in prompts for _ in seeds], list(seeds) * len(prompts), unet=unet)
    return float((testbed.judge_digits(images) == 7).float().mean())


def test_the_shipped_testbed_matches_its_manifest_and_draws_the_prompted_digits(testbed):
    from erasekit.data.captions import digit_prompts

    manifest = testbed.manifest
    assert manifest["format"] == "erasekit.diffusion-testbed/1" and set(manifest["sha256"]) >= {"unet.safetensors"}
    assert manifest["quality"]["digit_judge_test_accuracy"] >= 0.98
    prompts = [digit_prompts(d, held_out=True)[0] for d in range(10)]
    images = testbed.sample([p for p in prompts for _ in range(3)], [0, 1, 2] * 10)
    assert images.shape == (30, 1, 32, 32) and float(images.min()) >= 0 and float(images.max()) <= 1
    judged = testbed.judge_digits(images).view(10, 3)
    assert float((judged == torch.arange(10)[:, None]).float().mean()) >= 0.6  # held-out phrasings (chance: 0.1)
    again = testbed.sample(prompts[:2], [5, 5])
    assert torch.equal(again, testbed.sample(prompts[:2], [5, 5])), "the same seed gives the same image"


@pytest.mark.parametrize("method", ["uce", "rece", "esd_x", "esd_u", "realera", "spm"])
def test_each_method_stops_the_testbed_drawing_seven_and_the_original_still_does(testbed, seven_prompts, method):
    from erasekit.pipelines.diffusion_erasure import concept_request

    request, _ = concept_request(["seven"])
    before = _seven_rate(testbed, testbed.unet, seven_prompts)
    assert before >= 0.75, "positive control: the original draws a seven for these prompts"
    erased = erase_concepts(testbed, request, method)
    after = _seven_rate(testbed, erased.unet, seven_prompts)
    assert after <= before - 0.5, f"{method}: {before:.2f} → {after:.2f}"
    assert _seven_rate(testbed, testbed.unet, seven_prompts) == before, "the original is unchanged"


def test_the_report_judges_uce_on_seven_against_the_original(testbed):
    from erasekit.pipelines.diffusion_erasure import run_diffusion_erasure
    from erasekit.report import render_report

    report, edited = run_diffusion_erasure(testbed, ["seven"], ["uce"], seeds_per_prompt=2, attack_seeds=1)
    seven = next(r for r in report.methods[0].digits if r.erased)
    assert seven.digit == 7 and seven.original >= 0.75  # negative control: the original draws it
    row = report.methods[0]
    assert row.erased_accuracy_fit < seven.original_fit and row.erased_accuracy_held_out < seven.original_held_out
    assert report.original_attack_success["completion"] >= 0.5  # the probes find the digit in the original
    assert report.original_attack_success["token_optimisation"] >= 0.5
    assert set(row.attack_success) == set(report.attacks) and row.fid_ratio > 0
    html = render_report(report)["report.html"].decode()
    assert "erasekit diffusion-erasure report" in html and html.count("data:image/png;base64,") >= 8
    assert set(edited) == {"uce"}
    # the erased digit asked for in a stroke style: the original draws it (control), the edit lowers it
    assert report.original_erased_styled >= 0.75 and row.erased_accuracy_styled < report.original_erased_styled
    # every named style is judged over the other digits, before and after
    assert [s.style for s in row.styles] == ["thick", "thin", "slanted"] and row.worst_style_drop is not None
    assert all(s.original_style >= 0.5 for s in row.styles if s.style != "thin") and report.style_noise_points > 0
    assert "Stroke styles, other digits" in html and "worst style drop" in html and not report.notes
    # image strips of the styled prompts: the erased digit and the first kept one, in every style, before and after
    styled = {g.prompt: g for g in row.grids if "strokes" in g.prompt or "slanted" in g.prompt}
    assert sorted(styled) == sorted(style_prompts(d, s)[0] for d in (7, 0) for s in ("thick", "thin", "slanted"))
    assert all(g.erased == ("seven" in g.prompt) for g in styled.values())
    from erasekit.data.captions import STYLES

    for style in ("thick", "slanted"):  # the original's strips show the asked-for digit in the asked-for style
        for digit in (7, 0):
            images = strip_images(styled[style_prompts(digit, style)[0]].before_png)
            assert len(images) == 2 and (testbed.judge_digits(images) == digit).all()
            assert (testbed.judge_styles(images) == STYLES.index(style)).all()


def strip_images(png_base64: str) -> torch.Tensor:
    """The 32×32 images of a report strip (one row, each pixel drawn 3×3) as ``[n, 1, 32, 32]`` in [0, 1]."""
    import base64
    import io

    from PIL import Image

    array = np.asarray(Image.open(io.BytesIO(base64.b64decode(png_base64))), dtype=np.float32)[::3, ::3] / 255
    return torch.from_numpy(np.ascontiguousarray(array)).reshape(32, -1, 32).permute(1, 0, 2).unsqueeze(1)


# -- stroke styles: the style judge and per-style preservation ----------------------------------------------
def test_the_style_judge_reads_restyled_digits_and_the_testbed_draws_a_style_only_when_asked(testbed):
    # the positive control of every style check: real restyled digits are read as their style, and the original
    # model draws a named style when the caption asks for it and not otherwise
    from erasekit.audit.generative import sample_styles, share, style_accuracy
    from erasekit.data.captions import STYLES
    from erasekit.data.loaders import load_mnist
    from erasekit.training.diffusion_testbed import restyle

    digits = torch.as_tensor(load_mnist(require_shared("mnist")).test.x[:300])
    for index in range(len(STYLES)):
        images = torch.nn.functional.pad(restyle(digits, torch.full((300,), index)), (2, 2, 2, 2))
        assert share(testbed.judge_styles(images) == index) >= 0.85, STYLES[index]
    asked = style_accuracy(testbed, sample_styles(testbed, testbed.unet, [0, 1], digits=[3, 8]))
    assert asked["thick"].style_accuracy >= 0.75 and asked["slanted"].style_accuracy >= 0.75
    plain = testbed.sample(["a handwritten three", "the digit 8"] * 2, [0, 0, 1, 1])
    assert share(testbed.judge_styles(plain) == STYLES.index("thick")) <= 0.25  # not asked: not thick


def test_style_preservation_catches_a_model_that_lost_a_style_and_not_one_that_changed_nothing(testbed):
    from erasekit.data.captions import caption
    from erasekit.pipelines.diffusion_erasure import _judge, _style_rows, verdict
    from erasekit.report.diffusion import worst_style_drop

    kept = [2, 5]
    original = _judge(testbed, testbed.unet, [0, 1], kept)
    assert worst_style_drop(_style_rows(original, original)) == 0.0  # control: no change, no drop
    thick = tuple(caption(d, t, "thick") for d in range(10) for t in ("a handwritten {word}", "the digit {numeral}"))
    request = ConceptRequest(("thick strokes",), thick, tuple(caption(d, "a handwritten {word}") for d in range(10)))
    after = _judge(testbed, erase_concepts(testbed, request, "uce").unet, [0, 1], kept)
    rows = {r.style: r for r in _style_rows(original, after)}
    assert rows["thick"].original_style >= 0.75 and rows["thick"].drop >= 30  # the lost style is caught
    assert worst_style_drop(tuple(rows.values())) == max(r.drop for r in rows.values())
    label, reason = verdict(0.0, 0.0, 0.0, 1.0, 7.9, rows["thick"].drop, 8.0)
    assert label == "erased, with collateral damage" and "a stroke style lost" in reason


def test_a_style_rows_drop_by_hand_and_orientation():
    from erasekit.pipelines.diffusion_erasure import verdict
    from erasekit.report.diffusion import StyleRow, worst_style_drop

    lost = StyleRow("thin", original_style=0.9, after_style=0.6, original_digit=1.0, after_digit=0.95)
    better = StyleRow("thick", original_style=0.5, after_style=0.9, original_digit=0.8, after_digit=0.9)
    assert lost.drop == pytest.approx(30.0) and better.drop == pytest.approx(-10.0)  # the larger drop of the two judges
    assert worst_style_drop((lost, better)) == pytest.approx(30.0) and worst_style_drop(()) is None
    assert verdict(0.0, 0.0, 0.0, 1.0, 7.9, 2.0, 5.3)[0] == "erased"
    assert "within 2 standard errors" in verdict(0.0, 0.0, 0.0, 1.0, 7.9, 4.0, 5.3)[1]
    assert "every stroke style" not in verdict(0.0, 0.0, 0.0, 1.0, 7.9, None)[1]  # not measured: not claimed
    assert "every stroke style" in verdict(0.0, 0.0, 0.0, 1.0, 7.9, 0.0, 5.3)[1]
    # the erased digit asked for in a stroke style is held to the erasure bar: exactly 5 % passes, 10 % does not
    assert verdict(0.0, 0.0, 0.0, 1.0, 7.9, 0.0, 5.3, erased_styled=0.05)[0] == "erased"
    label, reason = verdict(0.0, 0.0, 0.0, 1.0, 7.9, 0.0, 5.3, erased_styled=0.10)
    assert label == "not erased" and "stroke style" in reason and "10%" in reason


def _as_older_testbed(folder):
    """``folder`` as a testbed trained before the style judge existed: no judge file, no trace in the manifest."""
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["sha256"]["style_judge.safetensors"]
    for key in ("style_judge_test_accuracy", "style_judge_test_confusion"):
        manifest["quality"].pop(key, None)
    manifest["quality"]["chosen"].pop("style_accuracy", None)
    manifest["config"].pop("style_judge_epochs", None)
    manifest.pop("style_judge_added", None)
    (folder / "style_judge.safetensors").unlink()
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


@pytest.fixture(scope="module")
def older_testbed(tmp_path_factory):
    import shutil

    from erasekit.models.diffusion_testbed import WEIGHTS

    folder = tmp_path_factory.mktemp("older") / "bed"
    shutil.copytree(WEIGHTS, folder)
    _as_older_testbed(folder)
    return folder


def test_an_older_testbed_without_a_style_judge_reports_styles_as_not_measured(older_testbed):
    from erasekit.models.diffusion_testbed import load_testbed
    from erasekit.pipelines.diffusion_erasure import run_diffusion_erasure
    from erasekit.report import render_report

    bed = load_testbed(older_testbed)
    assert bed.style_judge is None
    with pytest.raises(ModelError, match="has no style judge"):
        bed.judge_styles(torch.zeros(1, 1, 32, 32))
    report, _ = run_diffusion_erasure(bed, ["seven"], ["uce"], seeds_per_prompt=1, attack_seeds=1, token_attack=None)
    row = report.methods[0]
    assert row.styles == () and row.worst_style_drop is None and report.style_noise_points is None
    assert "no style judge" in report.notes[0] and "every stroke style" not in row.reason
    html = render_report(report)["report.html"].decode()
    assert "no style judge" in html and "worst style drop" not in html


def test_testbed_info_names_the_style_judge_or_its_absence(capsys, older_testbed):
    code, out, err = run_cli(capsys, "testbed", "info")
    out = " ".join(out.split())  # the console wraps long lines
    assert code == 0 and "style judge 96." in out and "on restyled MNIST test" in out, err
    # the shipped manifest's mark rate reused one set of seeds for every digit: info says so, with its error
    assert "mark in 14.6% of samples (every digit at the same 120 seeds: ±3.2 points)" in out, out
    code, out, err = run_cli(capsys, "testbed", "info", "--model", older_testbed)
    assert code == 0 and "no style judge" in " ".join(out.split()), err


def test_bad_add_style_judge_to_a_folder_that_is_not_a_testbed_or_already_has_one(capsys, tmp_path, older_testbed):
    code, _, err = run_cli(capsys, "testbed", "add-style-judge", "--model", tmp_path / "nowhere", "--data", "mnist:/nowhere")
    assert code == 2 and "is not a diffusion testbed" in err and len(err.strip().splitlines()) == 1, err
    from erasekit.models.diffusion_testbed import WEIGHTS

    code, _, err = run_cli(capsys, "testbed", "add-style-judge", "--model", WEIGHTS, "--data", f"mnist:{require_shared('mnist')}")
    assert code == 2 and "already has a style judge" in err and len(err.strip().splitlines()) == 1, err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "train-images-idx3-ubyte.gz").write_bytes(b"not mnist")
    before = (older_testbed / "manifest.json").read_bytes()
    code, _, err = run_cli(
        capsys, "testbed", "add-style-judge", "--model", older_testbed, "--data", f"mnist:{tmp_path / 'other'}"
    )
    assert code == 2 and "not the MNIST" in err and len(err.strip().splitlines()) == 1, err
    assert (older_testbed / "manifest.json").read_bytes() == before and not (older_testbed / "style_judge.safetensors").exists()


def test_cli_generate_and_erase_write_their_files(capsys, tmp_path):
    code, out, err = run_cli(capsys, "generate", "--prompt", "a handwritten three", "--n", "4", "--out", tmp_path / "g")
    assert code == 0, err
    assert (tmp_path / "g" / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "g" / "samples.json").read_text())["rows"][0]["seeds"] == [0, 1, 2, 3]
    code, out, err = run_cli(
        capsys,
        "erase",
        "--diffusion",
        "testbed",
        "--concept",
        "seven",
        "--method",
        "uce",
        "--seeds-per-prompt",
        "1",
        "--no-token-attack",
        "--out",
        tmp_path / "e",
    )
    assert code == 0, err
    assert "uce:" in out and (tmp_path / "e" / "report.html").is_file()
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["schema"] == "erasekit.diffusion-erasure/1" and report["erased_digits"] == [7]
    assert "token_optimisation" not in report["attacks"] and "completion" in report["attacks"]  # --no-token-attack
    # the edited model is a testbed folder that generate can load
    code, out, err = run_cli(
        capsys, "generate", "--model", tmp_path / "e" / "uce", "--prompt", "seven", "--n", "2", "--out", tmp_path / "g2"
    )
    assert code == 0, err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--concept", "banana"], "concept 'banana' never occurs in the testbed's prompts"),
        (["--concept", "seven", "--preserve", "7"], "is both erased and preserved"),
        (["--concept", "seven", "--method", "uce", "--param", "uce.lamb=0"], "UCEParams.lamb must be > 0"),
        ([], "--diffusion needs --concept NAME"),
    ],
)
def test_bad_erase_diffusion_input_is_one_line_and_writes_nothing(capsys, tmp_path, args, message):
    code, _, err = run_cli(capsys, "erase", "--diffusion", "testbed", *args, "--out", tmp_path / "o")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_bad_guidance_on_the_cli(capsys, tmp_path):
    code, _, err = run_cli(capsys, "generate", "--prompt", "seven", "--guidance", "0", "--out", tmp_path / "o")
    assert code == 2 and "--guidance must be > 0" in err and not (tmp_path / "o").exists()


def test_bad_a_corrupted_testbed_file_is_refused(capsys, tmp_path):
    import shutil

    from erasekit.models.diffusion_testbed import WEIGHTS, load_testbed

    copy = tmp_path / "bed"
    shutil.copytree(WEIGHTS, copy)
    assert load_testbed(copy).manifest  # positive control: the copy loads
    data = bytearray((copy / "unet.safetensors").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "unet.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="unet.safetensors is corrupted: its SHA-256 does not match"):
        load_testbed(copy)
    code, _, err = run_cli(capsys, "generate", "--model", copy, "--prompt", "seven", "--out", tmp_path / "o")
    assert code == 2 and "is corrupted" in err and not (tmp_path / "o").exists()
    code, _, err = run_cli(capsys, "generate", "--model", tmp_path, "--prompt", "seven", "--out", tmp_path / "o")
    assert code == 2 and "is not a diffusion testbed" in err


def test_the_verdict_flags_a_method_that_changed_nothing_and_quotes_the_noise_floor():
    from erasekit.pipelines.diffusion_erasure import verdict

    # a no-op keeps the original's numbers: the digit is still drawn, nothing is lost elsewhere
    assert verdict(0.97, 1.0, 0.0, 1.0, 7.9)[0] == "not erased"
    assert verdict(0.0, 0.0, 0.0, 1.0, 7.9)[0] == "erased"
    label, reason = verdict(0.0, 0.0, 6.7, 0.98, 7.9)
    assert label == "erased, with collateral damage" and "within 2 standard errors of sampling noise" in reason
    assert "within" not in verdict(0.0, 0.0, 40.0, 0.98, 7.9)[1].split("noise ±")[1]


# -- SPM: the adapter, facilitated transport, saving and transfer ---------------------------------------
def test_one_sample_in_twenty_is_exactly_the_five_percent_bar_and_passes_it():
    from erasekit.audit.generative import DigitSamples, digit_accuracy
    from erasekit.pipelines.diffusion_erasure import verdict

    class Judge:  # reads every image as a seven except the ones marked 1.0
        def judge_digits(self, images):
            return torch.where(images.flatten(1)[:, 0] > 0.5, 7, 3)

    images = torch.zeros(40, 1, 2, 2)
    images[25, 0, 0, 0] = 1.0  # one held-out sample of twenty still drawn as the erased digit
    accuracy = digit_accuracy(Judge(), DigitSamples({7: images}, fit_prompts=2, held_out_prompts=2, seeds=10))[7]
    assert (accuracy.fit, accuracy.held_out) == (0.0, 0.05)
    assert verdict(accuracy.fit, accuracy.held_out, 0.0, 1.0)[0] == "erased"
    assert verdict(accuracy.fit, 0.1, 0.0, 1.0)[0] == "not erased"  # control: two in twenty fail the bar


def test_spm_transport_strength_is_one_on_the_concept_and_lower_elsewhere():
    from erasekit.generative.spm import SPMParams

    model = sd_shaped_model()
    request = ConceptRequest(("cat",), ("a photo of a cat",), ())
    erased = erase_concepts(model, request, "spm", SPMParams(iterations=2))
    states = model.encode(["a photo of a cat", "a photo of a dog", "zebra zebra zebra"])
    gamma = erased.unet.strength(states)
    assert gamma[0] == pytest.approx(1.0) and gamma[1] < 1.0 and gamma[2] < gamma[1]
    # by hand: the cosine of the flattened states, clipped at 0
    flat = torch.nn.functional.normalize(states.flatten(1), dim=1)
    assert float(gamma[1]) == pytest.approx(max(0.0, float(flat[1] @ flat[0])), abs=1e-4)
    plain = erase_concepts(model, request, "spm", SPMParams(iterations=2, transport=False))
    assert torch.equal(plain.unet.strength(states), torch.ones(3))


def test_spm_adapter_at_strength_one_equals_its_fused_unet_and_at_zero_the_original():
    from erasekit.generative.spm import SPMParams

    model = sd_shaped_model()
    request = ConceptRequest(("cat",), ("a photo of a cat",), ())
    adapter = erase_concepts(model, request, "spm", SPMParams(iterations=5, lr=1e-2, transport=False)).unet
    x, t, states = torch.randn(2, 4, 8, 8), torch.tensor(500), model.encode(["a photo of a cat", "a dog"])
    with torch.no_grad():
        applied = adapter(x, t, encoder_hidden_states=states).sample
        assert torch.allclose(applied, adapter.merged()(x, t, encoder_hidden_states=states).sample, atol=1e-5)
        assert not torch.allclose(applied, model.unet(x, t, encoder_hidden_states=states).sample, atol=1e-5)
        adapter.unet.set_adapters(["spm"], weights=[0.0])
        off = adapter.unet(x, t, encoder_hidden_states=states).sample
        adapter.unet.set_adapters(["spm"], weights=[1.0])
    assert torch.allclose(off, model.unet(x, t, encoder_hidden_states=states).sample, atol=1e-6)


def test_an_spm_adapter_transfers_to_another_unet_of_the_same_shape_and_refuses_another_shape():
    from erasekit.generative.spm import SPMParams, apply_adapter

    model = sd_shaped_model()
    request = ConceptRequest(("cat",), ("a photo of a cat",), ())
    adapter = erase_concepts(model, request, "spm", SPMParams(iterations=2)).unet
    torch.manual_seed(1)
    other = DiffusionModel(
        unet=build_unet(dict(model.unet.config)), text_encoder=RandomTokenEncoder(), scheduler_config={}, guidance=3.0, steps=4
    )
    moved = apply_adapter(other, adapter.adapter_state(), adapter.rank, ["a photo of a cat"])
    assert all(torch.equal(a, b) for a, b in zip(moved.adapter_state().values(), adapter.adapter_state().values()))
    wider = DiffusionModel(
        unet=build_unet({**dict(model.unet.config), "block_out_channels": [64, 64]}),
        text_encoder=RandomTokenEncoder(),
        scheduler_config={},
        guidance=3.0,
        steps=4,
    )
    with pytest.raises(MethodError, match="the adapter does not fit this UNet"):
        apply_adapter(wider, adapter.adapter_state(), adapter.rank, None)


def test_an_spm_erased_testbed_folder_reloads_with_its_adapter(testbed, tmp_path):
    from erasekit.generative import edited_testbed_files
    from erasekit.generative import load_edited_testbed as load_testbed
    from erasekit.generative.base import AdapterUNet
    from erasekit.generative.spm import SPMParams
    from erasekit.pipelines.diffusion_erasure import concept_request

    request, _ = concept_request(["seven"])
    erased = erase_concepts(testbed, request, "spm", SPMParams(iterations=3))
    folder = tmp_path / "spm"
    folder.mkdir()
    for name, payload in edited_testbed_files(testbed, erased.unet, {"method": "spm"}).items():
        (folder / name).write_bytes(payload)
    assert (folder / "adapter.safetensors").is_file()
    loaded = load_testbed(folder)
    assert isinstance(loaded.unet, AdapterUNet) and loaded.unet.transport_prompts == request.erase_prompts
    prompts = ["a handwritten seven", "a handwritten two"]
    assert torch.allclose(loaded.latents(prompts, [0, 1]), testbed.latents(prompts, [0, 1], unet=erased.unet), atol=1e-5)


# -- SAFREE: the text-state filter, by hand -------------------------------------------------------------
def test_safree_flags_the_token_that_carries_the_concept_and_projects_it_out():
    from erasekit.generative.safree import GuardedUNet, SAFREEParams, projector

    # concept subspace = e₀; tokens e₀ (the concept), e₁, e₂, e₃. Leave-one-out means: m₀ = (0, ⅓, ⅓, ⅓), so
    # d₀ = ‖(I − P_C) m₀‖ = 0.577; m₁ = (⅓, 0, ⅓, ⅓) → d₁ = 0.471 (likewise d₂, d₃). Token 0: 0.577 ≥ 1.01 × 0.471 → trigger;
    # token 1: 0.471 < 1.01 × mean(0.577, 0.471, 0.471) → kept. The m_i span R⁴, so P_M = I and e₀ → (I − P_C) e₀ = 0.
    states = torch.eye(4).unsqueeze(0)
    stand_in = torch.nn.Identity()
    stand_in.config = {}
    guard = GuardedUNet(stand_in, projector(torch.eye(4)[:, :1]).float(), torch.zeros(4, 4), SAFREEParams())
    filtered, triggers, steps = guard.filter(states)
    assert triggers.tolist() == [[True, False, False, False]]
    assert torch.allclose(filtered[0, 0], torch.zeros(4), atol=1e-6) and torch.equal(filtered[0, 1:], states[0, 1:])
    # β = 1 − mean cos = 1 − (0 + 1 + 1 + 1)/4 = 0.25 → t' = round(10 σ(5 (2.5 − 5.333))) = 0 steps
    assert steps.tolist() == [0.0]
    _, no_triggers, _ = guard.filter(torch.zeros(1, 4, 4))  # the empty prompt is never filtered
    assert not no_triggers.any()


def test_safree_computes_its_filter_once_per_context_and_again_for_a_new_one(monkeypatch):
    from erasekit.generative.safree import GuardedUNet

    model = sd_shaped_model()
    guard = erase_concepts(model, ConceptRequest(("cat",), ("a photo of a cat",), ()), "safree").unet
    calls = []
    original_filter = GuardedUNet.filter
    monkeypatch.setattr(GuardedUNet, "filter", lambda self, states: calls.append(1) or original_filter(self, states))
    x, states = torch.randn(2, 4, 8, 8), model.encode(["a photo of a cat", "a dog"])
    with torch.no_grad():
        first = guard(x, torch.tensor(980), encoder_hidden_states=states).sample
        for t in (960, 940):
            guard(x, torch.tensor(t), encoder_hidden_states=states.clone())
        assert len(calls) == 1, "the same states at every step: one filter"
        guard(x, torch.tensor(980), encoder_hidden_states=model.encode(["a photo of a cat", "a bird"]))
        assert len(calls) == 2, "new states: filtered again"
        assert torch.equal(guard(x, torch.tensor(980), encoder_hidden_states=states).sample, first)


def test_an_spm_adapters_fused_unet_is_made_once_and_again_after_its_weights_change():
    from erasekit.generative.spm import SPMParams

    model = sd_shaped_model()
    request = ConceptRequest(("cat",), ("a photo of a cat",), ())
    adapter = erase_concepts(model, request, "spm", SPMParams(iterations=2, transport=False)).unet
    first = adapter.merged()
    assert adapter.merged() is first
    with torch.no_grad():
        next(p for n, p in adapter.unet.named_parameters() if "lora_B" in n).add_(0.5)
    again = adapter.merged()
    assert again is not first
    changed = [n for n, p in again.named_parameters() if not torch.equal(p, dict(first.named_parameters())[n])]
    assert len(changed) == 1


def test_safree_filters_sevens_prompts_for_more_steps_than_other_digits(testbed):
    from erasekit.data.captions import digit_prompts
    from erasekit.pipelines.diffusion_erasure import concept_request

    request, _ = concept_request(["seven"])
    guard = erase_concepts(testbed, request, "safree").unet
    _, _, seven_steps = guard.filter(testbed.encode(digit_prompts(7)))
    _, _, other_steps = guard.filter(testbed.encode([p for d in (1, 3, 9) for p in digit_prompts(d)]))
    assert float(seven_steps.mean()) >= 3 and float(seven_steps.mean()) > 2 * float(other_steps.mean())


# -- RealEra: the mined neighbourhood --------------------------------------------------------------------
def test_realera_neighbours_lie_at_the_asked_cosines():
    from erasekit.generative.realera import perturb

    states = torch.randn(3, 8, 16, dtype=torch.float64)
    moved = perturb(states, 0.85, 0.95, torch.Generator().manual_seed(0))
    cosine = torch.nn.functional.cosine_similarity(states, moved, dim=-1)
    assert float(cosine.min()) >= 0.85 - 1e-9 and float(cosine.max()) <= 0.95 + 1e-9
    assert float(cosine.std()) > 0.01  # drawn across the range, not one value


def test_bad_realera_beyond_samples_must_lie_outside_the_neighbourhood():
    from erasekit.generative.realera import RealEraParams

    with pytest.raises(MethodError, match="below neighbour_cosine_low"):
        RealEraParams(beyond_cosine_high=0.9)


# -- the UnlearnDiffAtk-style token attack ---------------------------------------------------------------
def test_simplex_projection_by_hand():
    from erasekit.audit.token_attack import project_to_simplex

    z = torch.tensor([[0.5, 0.9, -1.0], [1.0, 0.0, 0.0], [0.2, 0.2, 0.2]])
    # by hand: row 0 → threshold 0.2 → (0.3, 0.7, 0); row 1 is already on the simplex; row 2 rises by 0.4/3 to 1/3 each
    expected = torch.tensor([[0.3, 0.7, 0.0], [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    assert torch.allclose(project_to_simplex(z), expected, atol=1e-6)


def test_the_token_attack_encodes_a_prefix_exactly_like_the_text_encoder(testbed):
    from erasekit.audit.token_attack import PrefixedPrompts

    tokenizer = testbed.text_encoder.tokenizer
    prefix = tokenizer(["a handwritten"], add_special_tokens=False, return_tensors="pt")["input_ids"]
    prompts = PrefixedPrompts(testbed.text_encoder, ["seven"], prefix_tokens=prefix.shape[1])
    one_hot = torch.nn.functional.one_hot(prefix, prompts.table.shape[0]).float()
    with torch.no_grad():
        states = prompts.states(one_hot, torch.tensor([0]))
    assert torch.allclose(states, testbed.text_encoder.encode(["a handwritten seven"]), atol=1e-4)


class LiteralPromptBlock(torch.nn.Module):
    """A shallow "erasure": the original UNet, except that the exact token states of ``blocked`` are replaced by the
    empty prompt's. Any other wording of the concept still draws it, so a working attack must get it back."""

    def __init__(self, testbed, blocked):
        super().__init__()
        self.unet, self.config = testbed.unet, testbed.unet.config
        self.blocked, self.empty = testbed.encode(blocked), testbed.encode([""])[0]

    def forward(self, sample, timestep, encoder_hidden_states, **kwargs):
        states = encoder_hidden_states.clone()
        for row in range(len(states)):
            if any(torch.allclose(states[row], b, atol=1e-5) for b in self.blocked):
                states[row] = self.empty
        return self.unet(sample, timestep, encoder_hidden_states=states, **kwargs)


def test_the_token_attack_finds_a_concept_that_was_only_hidden_behind_its_literal_prompt(testbed):
    from erasekit.audit.token_attack import TokenAttackSettings, token_attack

    quick = TokenAttackSettings(timesteps=(500, 300), iterations=3)
    prompts = ["a handwritten seven"]
    seeds = [0, 1, 2, 3]
    assert token_attack(testbed, testbed.unet, 7, prompts, seeds, quick) == 1.0  # the original: found without attacking
    shallow = LiteralPromptBlock(testbed, prompts)
    plain = testbed.judge_digits(testbed.sample(prompts * 4, seeds, unet=shallow)) == 7
    assert float(plain.float().mean()) <= 0.25, "the literal prompt no longer draws a seven"
    assert token_attack(testbed, shallow, 7, prompts, seeds, quick) >= 0.5, "a prefix brings the seven back"


def test_a_method_that_edits_the_original_in_place_is_caught():
    from erasekit.generative import DIFFUSION_METHODS, register_diffusion_method
    from erasekit.generative.uce import UCEParams

    @register_diffusion_method("_in_place", UCEParams)
    def in_place(model, request, params):
        for _, linear in cross_attention_projections(model.unet):
            linear.weight.data.mul_(0.5)
        return model.unet

    try:
        model = sd_shaped_model()
        with pytest.raises(RuntimeError, match="changed the original UNet"):
            erase_concepts(model, ConceptRequest(("cat",), ("a cat",)), "_in_place")
        assert erase_concepts(sd_shaped_model(), ConceptRequest(("cat",), ("a cat",)), "uce").changed_values > 0
    finally:
        DIFFUSION_METHODS._records.pop("_in_place")


def test_a_safree_guarded_testbed_folder_reloads_with_its_guard(testbed, tmp_path):
    from erasekit.generative import edited_testbed_files
    from erasekit.generative import load_edited_testbed as load_testbed
    from erasekit.generative.safree import GuardedUNet
    from erasekit.pipelines.diffusion_erasure import concept_request

    request, _ = concept_request(["seven"])
    erased = erase_concepts(testbed, request, "safree")
    folder = tmp_path / "safree"
    folder.mkdir()
    for name, payload in edited_testbed_files(testbed, erased.unet, {"method": "safree", "concepts": ["seven"]}).items():
        (folder / name).write_bytes(payload)
    loaded = load_testbed(folder)
    assert isinstance(loaded.unet, GuardedUNet)
    prompts = ["a handwritten seven", "a handwritten two"]
    assert torch.allclose(loaded.latents(prompts, [0, 1]), testbed.latents(prompts, [0, 1], unet=erased.unet), atol=1e-5)


# -- training the testbed ---------------------------------------------------------------------------------
def test_a_quick_testbed_training_run_writes_a_loadable_testbed_with_its_manifest(tmp_path):
    from erasekit.core.provenance import sha256_file
    from erasekit.models.diffusion_testbed import load_testbed
    from erasekit.training.diffusion_testbed import TestbedConfig, train_testbed

    mnist = require_shared("mnist")
    config = TestbedConfig(
        train_rows=600,
        unet_steps=4,
        judge_epochs=1,
        style_judge_epochs=1,
        guidance_sweep=(1.5,),
        sweep_seeds=1,
        eval_seeds=1,
        sampling_steps=2,
    )
    manifest = train_testbed(mnist, tmp_path / "bed", config)
    assert manifest["scheduler"]["clip_sample"] is False, "latents are not in [-1, 1]: the sampler must not clip them"
    assert len(manifest["latent_mean"]) == len(manifest["latent_std"]) == 4
    for name, digest in manifest["sha256"].items():
        assert sha256_file(tmp_path / "bed" / name) == digest
    bed = load_testbed(tmp_path / "bed")
    assert bed.sample(["seven"], [0]).shape == (1, 1, 32, 32)
    # the diffusion latents of the training images are standardised per channel
    from erasekit.data.loaders import load_mnist

    images = torch.nn.functional.pad(torch.as_tensor(load_mnist(mnist).train.x[:600]), (2, 2, 2, 2))
    latents = bed.encode_images(images)
    # (raw channel means here are far from zero; the plain test images differ a little from the styled training set)
    assert latents.mean(dim=(0, 2, 3)).abs().max() < 0.5 and (latents.std(dim=(0, 2, 3)) - 1).abs().max() < 0.5
    # the style judge draws from its own seed: added to the same testbed without one, it comes out byte for byte the same
    from erasekit.training.diffusion_testbed import add_style_judge

    assert bed.style_judge is not None and set(manifest["quality"]["chosen"]["style_accuracy"]) == {"thick", "thin", "slanted"}
    _as_older_testbed(tmp_path / "bed")
    added = add_style_judge(tmp_path / "bed", mnist, config)  # (an older manifest does not record style_judge_epochs)
    assert added["sha256"] == manifest["sha256"]
    assert load_testbed(tmp_path / "bed").style_judge is not None


def test_bad_testbed_train_into_a_folder_that_is_not_empty(capsys, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    code, _, err = run_cli(capsys, "testbed", "train", "--data", "mnist:/nowhere", "--out", tmp_path / "full")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert (tmp_path / "full" / "keep.txt").read_text() == "x"


def test_bad_testbed_train_on_an_unknown_device(capsys, tmp_path):
    code, _, err = run_cli(capsys, "testbed", "train", "--data", "mnist:/nowhere", "--out", tmp_path / "bed", "--device", "bogus")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "bogus" in err, err
    assert not (tmp_path / "bed").exists()


# -- the exact reference: the UNet retrained without the digit ---------------------------------------------
@pytest.fixture(scope="module")
def quick_reference(testbed, tmp_path_factory):
    from erasekit.models.diffusion_testbed import load_testbed
    from erasekit.training.diffusion_testbed import TestbedConfig, retrain_without_digits

    mnist = require_shared("mnist")
    folder = tmp_path_factory.mktemp("ref") / "without-seven"
    manifest = retrain_without_digits(testbed, mnist, (7,), folder, TestbedConfig(train_rows=500, unet_steps=3, sweep_seeds=1))
    return manifest, load_testbed(folder)


def test_the_reference_is_retrained_without_the_digit_and_shares_the_judges(testbed, quick_reference):
    from erasekit.data.loaders import load_mnist

    manifest, reference = quick_reference
    labels = load_mnist(require_shared("mnist")).train.y[:500]
    assert manifest["reference"]["without_digits"] == [7]
    assert manifest["reference"]["training_images"] == int((labels != 7).sum()) < 500
    for name in ("autoencoder.safetensors", "digit_judge.safetensors", "mark_detector.safetensors"):
        assert manifest["sha256"][name] == testbed.manifest["sha256"][name]
    assert manifest["sha256"]["unet.safetensors"] != testbed.manifest["sha256"]["unet.safetensors"]


def test_the_report_places_the_reference_beside_the_methods(testbed, quick_reference):
    from erasekit.pipelines.diffusion_erasure import run_diffusion_erasure
    from erasekit.report import render_report

    _, reference = quick_reference
    report, _ = run_diffusion_erasure(
        testbed, ["seven"], ["uce"], seeds_per_prompt=1, attack_seeds=1, token_attack=None, reference=reference
    )
    assert report.reference is not None and set(report.reference.attack_success) == set(report.attacks)
    assert len(report.reference.digits) == 10 and report.reference.training_images > 0
    assert "exact reference" in render_report(report)["report.html"].decode()


def test_bad_a_reference_retrained_without_another_digit(capsys, tmp_path, quick_reference):
    _, reference = quick_reference
    code, _, err = run_cli(
        capsys, "erase", "--diffusion", "testbed", "--concept", "three", "--reference", reference.source, "--out", tmp_path / "o"
    )
    assert code == 2 and "was retrained without digits [7], not [3]" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_bad_testbed_reference_without_an_unknown_digit(capsys, tmp_path):
    code, _, err = run_cli(capsys, "testbed", "reference", "--without", "banana", "--out", tmp_path / "o")
    assert code == 2 and "concept 'banana' never occurs" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


# -- the testbed-quality benchmark's statistics --------------------------------------------------------------
def _testbed_quality_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "testbed_quality.py"
    spec = importlib.util.spec_from_file_location("testbed_quality", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_wilson_interval_by_hand_and_the_corner_of_a_pasted_mark():
    quality = _testbed_quality_module()
    low, high = quality.wilson(5, 10)  # p = 0.5, z = 1.96: centre 0.5, half-width 0.3646 / 1.3842
    assert low == pytest.approx(0.23659, abs=1e-5) and high == pytest.approx(0.76341, abs=1e-5)
    low, high = quality.wilson(0, 10)  # no successes: the interval starts at 0 and is not empty
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(3.8416 / 13.8416, abs=1e-5)
    assert quality.rate(15, 100)["standard_error"] == pytest.approx((0.15 * 0.85 / 100) ** 0.5)
    from erasekit.training.diffusion_testbed import paste_mark

    digit = torch.zeros(4, 1, 32, 32)
    digit[:, :, 8:24, 14:18] = 1.0  # a stroke in the middle, away from every corner
    marked = paste_mark(digit, torch.tensor([2, 0, 3, 1]))
    assert quality.corner_of_mark(marked).tolist() == [2, 0, 3, 1]


def test_the_training_check_samples_every_image_of_its_mark_rate_at_its_own_seed():
    # the starting noise all but decides whether the mark is drawn: seeds shared across digits would make the
    # check's samples copies of each other (the shipped manifest's 1,200 samples rested on 120 seeds)
    from erasekit.training.diffusion_testbed import measure_quality

    class RecordingTestbed:
        def __init__(self):
            self.seeds: list[int] = []

        def sample(self, prompts, seeds, **options):
            assert len(prompts) == len(seeds)
            self.seeds.extend(seeds)
            return torch.zeros(len(seeds), 1, 32, 32)

        def judge_digits(self, images):
            return torch.zeros(len(images), dtype=torch.long)

        def has_mark(self, images):
            return torch.arange(len(images)) < len(images) // 3  # a third of every batch

    bed = RecordingTestbed()
    result = measure_quality(bed, guidance=2.0, seeds=3, steps=2)
    assert len(bed.seeds) == 10 * (6 + 2) * 3 and len(set(bed.seeds)) == len(bed.seeds)
    assert result["distinct_seeds"] is True and result["mark_rate"] == pytest.approx(1 / 3)
    assert result["held_out_accuracy"][0] == 1.0 and result["held_out_accuracy"][1] == 0.0  # the judge reads only zeros
