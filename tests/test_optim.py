"""Adam and AMSGrad as the reference states them: the update rule, its state, and how a config
asks for them."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from ptb_lstm.config import PRESETS, apply_overrides, from_dict, load_config, parse_sets
from ptb_lstm.errors import UserError
from ptb_lstm.optim import NumpyAdam, initial_state, state_shapes

VOCAB = 5


def config(**changes):
    return PRESETS["tiny"].replace(**changes)


def one_parameter(optimizer: str, **changes) -> tuple[NumpyAdam, dict]:
    """An optimizer over every parameter of a tiny model, all zero."""
    cfg = config(optimizer=optimizer, **changes)
    shapes = {
        name[2:]: shape for name, shape in state_shapes(cfg, VOCAB).items() if name.startswith("m_")
    }
    return NumpyAdam(cfg, VOCAB, np.float64), {n: np.zeros(s) for n, s in shapes.items()}


def grads_like(params: dict, values: np.ndarray | float) -> dict:
    return {name: np.full_like(p, values) for name, p in params.items()}


def test_first_adam_step_moves_each_weight_by_the_learning_rate_against_the_gradient_sign():
    # At t = 1, m / (1 - beta1) = g and v / (1 - beta2) = g^2: the step is lr g / (|g| + eps).
    adam, params = one_parameter("adam", epsilon=1e-3)
    adam.update(params, grads_like(params, -0.5), learning_rate=0.1, scale=1.0)
    for value in params.values():
        np.testing.assert_allclose(value, 0.1 * 0.5 / (0.5 + 1e-3), rtol=1e-15)


def test_clipping_scale_multiplies_the_gradient_before_the_moments():
    # The step of Adam is scale-free except for epsilon: with a tiny scale, epsilon wins.
    adam, params = one_parameter("adam", epsilon=1.0)
    adam.update(params, grads_like(params, 2.0), learning_rate=1.0, scale=0.25)
    g = 2.0 * 0.25
    for value in params.values():
        np.testing.assert_allclose(value, -g / (g + 1.0), rtol=1e-15)


def test_second_step_uses_bias_corrected_moments():
    b1, b2, eps, lr = 0.5, 0.75, 1e-8, 0.01
    adam, params = one_parameter("adam", beta1=b1, beta2=b2, epsilon=eps)
    g1, g2 = 1.0, 3.0
    adam.update(params, grads_like(params, g1), lr, 1.0)
    adam.update(params, grads_like(params, g2), lr, 1.0)
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    second = lr * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)
    first = lr * g1 / (g1 + eps)
    for value in params.values():
        np.testing.assert_allclose(value, -(first + second), rtol=1e-14)
    assert int(adam.get_state()["t"]) == 2


def test_amsgrad_keeps_the_largest_raw_second_moment():
    # A large gradient, then small ones: v decays, vmax keeps the large one (uncorrected).
    b2 = 0.5
    ams, params = one_parameter("amsgrad", beta1=0.0, beta2=b2, epsilon=1e-12)
    for g in (4.0, 0.1, 0.1):
        ams.update(params, grads_like(params, g), 1.0, 1.0)
    state = ams.get_state()
    v1 = (1 - b2) * 16.0
    v3 = b2 * (b2 * v1 + (1 - b2) * 0.01) + (1 - b2) * 0.01
    name = "softmax_bias"
    np.testing.assert_allclose(state[f"v_{name}"], v3, rtol=1e-15)
    np.testing.assert_allclose(state[f"vmax_{name}"], v1, rtol=1e-15)
    # The fourth step divides by sqrt(vmax / (1 - b2^4)), not by sqrt(v / ...).
    before = params[name].copy()
    ams.update(params, grads_like(params, 0.1), 1.0, 1.0)
    step = before - params[name]
    np.testing.assert_allclose(step, 0.1 / (np.sqrt(v1 / (1 - b2**4)) + 1e-12), rtol=1e-12)


def test_unused_rows_still_move_by_their_momentum():
    adam, params = one_parameter("adam", beta1=0.9)
    grads = grads_like(params, 1.0)
    adam.update(params, grads, 0.1, 1.0)
    after_first = params["embedding"].copy()
    adam.update(params, grads_like(params, 0.0), 0.1, 1.0)
    assert (params["embedding"] < after_first).all()


# torch.optim.Adam on the gradients of grads.npz, in a process of its own: its first use imports
# torch._dynamo and triton, which crash a process that has TensorFlow loaded (as the suite's does).
TORCH_ADAM = """\
import sys
import numpy as np
import torch
data = dict(np.load(sys.argv[1]))
names = [n[len("p_"):] for n in data if n.startswith("p_")]
tensors = {n: torch.tensor(data["p_" + n], requires_grad=True) for n in names}
b1, b2, eps, lr, amsgrad = data["hyper"]
adam = torch.optim.Adam(tensors.values(), lr=lr, betas=(b1, b2), eps=eps, amsgrad=bool(amsgrad),
                        foreach=False)
for step in range(int(data["steps"])):
    for n, t in tensors.items():
        t.grad = torch.tensor(data[f"g{step}_{n}"])
    adam.step()
out = {}
for n, t in tensors.items():
    state = adam.state[t]
    out["p_" + n] = t.detach().numpy()
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        if key in state:
            out[f"{key}_{n}"] = state[key].numpy()
np.savez(sys.argv[2], **out)
"""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")
@pytest.mark.parametrize("amsgrad", [False, True])
def test_the_rule_is_torch_optim_adam(amsgrad, tmp_path):
    import subprocess
    import sys

    rng = np.random.default_rng(4)
    b1, b2, eps, lr, steps = 0.8, 0.95, 1e-6, 0.03, 6
    adam, params = one_parameter("amsgrad" if amsgrad else "adam", beta1=b1, beta2=b2, epsilon=eps)
    for name in params:
        params[name] = rng.normal(size=params[name].shape)
    data = {f"p_{n}": p.copy() for n, p in params.items()}
    data.update(hyper=np.array([b1, b2, eps, lr, float(amsgrad)]), steps=np.array(steps))
    for step in range(steps):
        # Large and tiny gradients, so that the moments rise and fall.
        grads = {n: rng.normal(size=p.shape) * rng.choice([0.01, 3.0]) for n, p in params.items()}
        data.update({f"g{step}_{n}": g for n, g in grads.items()})
        adam.update(params, {n: g.copy() for n, g in grads.items()}, lr, 1.0)
    np.savez(tmp_path / "grads.npz", **data)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            TORCH_ADAM,
            str(tmp_path / "grads.npz"),
            str(tmp_path / "torch.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    theirs = dict(np.load(tmp_path / "torch.npz"))
    ours = adam.get_state()
    # torch writes m = m + (1 - beta1) (g - m) (a lerp): the same value, rounded otherwise.
    pairs = [("m", "exp_avg"), ("v", "exp_avg_sq")] + [("vmax", "max_exp_avg_sq")] * amsgrad
    for name in params:
        np.testing.assert_allclose(params[name], theirs[f"p_{name}"], rtol=0, atol=1e-13)
        for part, key in pairs:
            np.testing.assert_allclose(
                ours[f"{part}_{name}"], theirs[f"{key}_{name}"], rtol=1e-12, atol=1e-16
            )


def test_sgd_keeps_no_state_and_adam_starts_at_zero():
    assert state_shapes(config(optimizer="sgd"), VOCAB) == {}
    state = initial_state(config(optimizer="amsgrad"), VOCAB, np.float32)
    assert int(state["t"]) == 0 and state["t"].shape == ()
    assert {n.split("_")[0] for n in state if n != "t"} == {"m", "v", "vmax"}
    assert all(not v.any() for v in state.values())


def test_presets_train_with_the_papers_sgd_and_torchs_adam_defaults():
    small = PRESETS["small"]
    assert (small.optimizer, small.beta1, small.beta2, small.epsilon) == ("sgd", 0.9, 0.999, 1e-8)


def test_set_chooses_the_optimizer_and_its_constants():
    cfg = apply_overrides(
        PRESETS["small"],
        parse_sets(["optimizer=amsgrad", "beta1=0.8", "beta2=0.99", "epsilon=1e-6"]),
    )
    assert (cfg.optimizer, cfg.beta1, cfg.beta2, cfg.epsilon) == ("amsgrad", 0.8, 0.99, 1e-6)


def test_toml_chooses_the_optimizer(tmp_path):
    path = tmp_path / "adam.toml"
    path.write_text('preset = "small"\noptimizer = "adam"\nlearning_rate = 0.002\n')
    cfg = load_config(str(path))
    assert (cfg.optimizer, cfg.learning_rate, cfg.beta2) == ("adam", 0.002, 0.999)


@pytest.mark.parametrize(
    "pair, fragment",
    [
        ("optimizer=adamw", "optimizer must be one of sgd, adam, amsgrad"),
        ("beta1=1", "beta1 must be in [0, 1)"),
        ("beta2=-0.1", "beta2 must be in [0, 1)"),
        ("epsilon=0", "epsilon must be > 0"),
        ("epsilon=-1e-8", "epsilon must be > 0"),
        ("beta1=high", "beta1 must be a number"),
    ],
)
def test_out_of_range_optimizer_settings_name_the_field(pair, fragment):
    with pytest.raises(UserError) as error:
        apply_overrides(PRESETS["small"], parse_sets([pair]))
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_toml_optimizer_must_be_a_string(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('preset = "tiny"\noptimizer = 3\n')
    with pytest.raises(UserError, match="optimizer must be a string"):
        load_config(str(path))


def test_a_config_written_before_the_optimizer_fields_loads_as_sgd():
    old = {
        k: v
        for k, v in PRESETS["tiny"].to_dict().items()
        if k not in ("optimizer", "beta1", "beta2", "epsilon")
    }
    assert from_dict(old, source="config.json").optimizer == "sgd"


def test_inspect_reports_the_optimizer_state(tmp_path, tiny_dir):
    from conftest import run_cli, train_tiny

    out = train_tiny(tiny_dir, tmp_path / "run", "--set", "optimizer=amsgrad", "--max-steps", "4")
    shown = run_cli("inspect", str(out / "model.npz"))
    assert shown.returncode == 0, shown.stderr
    assert "optimizer:   amsgrad state after 4 updates (t, m, v, vmax)" in shown.stdout


def test_the_memory_estimate_counts_adams_moments(monkeypatch):
    from ptb_lstm import params

    cfg = PRESETS["small"]
    weights = 4 * sum(int(np.prod(s)) for s in params.param_shapes(cfg, 10_000).values())
    activations = 4 * 400 * (10 * 200 * 2 + 3 * 10_000)
    # Room for SGD's three copies of the weights and one batch, not for Adam's two more.
    monkeypatch.setattr(params, "available_memory", lambda: 3 * weights + activations + 1)
    params.check_memory(cfg, 10_000, np.float32)
    with pytest.raises(UserError, match="needs about"):
        params.check_memory(cfg.replace(optimizer="adam"), 10_000, np.float32)


def test_a_bad_optimizer_setting_is_a_one_line_error_with_status_2(tmp_path, tiny_dir):
    from conftest import assert_user_error, run_cli

    result = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(tiny_dir),
        "--set",
        "optimizer=amsgrad",
        "--set",
        "beta2=1",
        "--out",
        str(tmp_path / "r"),
    )
    assert_user_error(result, "--set", "beta2 must be in [0, 1), got 1.0")
    assert not (tmp_path / "r").exists()
