"""Concept erasure in diffusion models: the shipped testbed, every method, the audit and its bad input.

Every "it is erased" check has its positive control: the original model draws the concept under
the same judge, prompts and seeds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import run_cli
from erasekit.core.errors import MethodError, ModelError
from erasekit.generative import ConceptRequest, available_diffusion_methods, diffusion_method_info, erase_concepts
from erasekit.generative.base import cross_attention_projections
from erasekit.generative.uce import closed_form_edit
from erasekit.models.diffusion_testbed import DiffusionModel, build_unet

FAST = {"esd_x": {"iterations": 3}, "esd_u": {"iterations": 3}}


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
    assert erased.edited_parameters and erased.changed_values > 0
    in_attn2 = [".attn2." in name for name in erased.edited_parameters]
    if method in ("uce", "esd_x"):
        assert all(in_attn2), erased.edited_parameters
    if method == "uce":
        assert all(name.endswith(("to_k.weight", "to_v.weight")) for name in erased.edited_parameters)
    if method == "esd_u":
        assert not any(in_attn2)


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


@pytest.mark.parametrize("method", ["uce", "rece", "esd_x", "esd_u"])
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
    assert set(row.attack_success) == set(report.attacks) and row.fid_ratio > 0
    html = render_report(report)["report.html"].decode()
    assert "erasekit diffusion-erasure report" in html and html.count("data:image/png;base64,") >= 8
    assert set(edited) == {"uce"}


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
        "--out",
        tmp_path / "e",
    )
    assert code == 0, err
    assert "uce:" in out and (tmp_path / "e" / "report.html").is_file()
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["schema"] == "erasekit.diffusion-erasure/1" and report["erased_digits"] == [7]
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
