"""The engine registry and interface: what every engine declares, how it is found and loaded,
and what a user is told when an engine's framework or device is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ptb_lstm.config import PRESETS
from ptb_lstm.engines import (
    DEVICES,
    REGISTRY,
    Engine,
    create_engine,
    engine_class,
    install_hint,
    installed_engines,
    spec,
)
from ptb_lstm.errors import UserError
from ptb_lstm.params import init_params

from conftest import REPO, assert_user_error, run_cli

OPTIONAL = [name for name in REGISTRY if spec(name).extra]


def test_every_registered_engine_names_a_module_and_a_class():
    for name in REGISTRY:
        entry = spec(name)
        assert entry.module.startswith("ptb_lstm.engines.") and entry.class_name, name
        assert (entry.extra is None) == (entry.framework is None), name


@pytest.mark.parametrize("name", installed_engines())
def test_each_installed_engine_declares_the_interface(name):
    cls = engine_class(name)
    assert issubclass(cls, Engine) and cls.name == name
    assert set(cls.devices) <= set(DEVICES) and "cpu" in cls.devices
    config = PRESETS["tiny"]
    engine = create_engine(name, config, init_params(config, 11), "float64", device="cpu")
    assert engine.dtype == "float64" and engine.vocab_size == 11 and engine.config == config
    assert np.isnan(engine.last_grad_norm)
    assert isinstance(engine.device, str) and engine.device


@pytest.mark.parametrize("name", OPTIONAL)
def test_a_missing_framework_gives_the_install_hint_of_that_engine(name, tiny_dir, tmp_path):
    framework = spec(name).framework
    blocker = f"import sys; sys.modules[{framework!r}] = None; "
    run = "from ptb_lstm.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            blocker + run,
            "train",
            "--config",
            "tiny",
            "--data-dir",
            str(tiny_dir),
            "--max-steps",
            "1",
            "--engine",
            name,
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
    )
    assert_user_error(
        result, f"--engine {name} needs", " -m pip install -e ", f"[{spec(name).extra}]'"
    )


def test_any_registered_engine_gets_the_hint_not_only_the_known_ones(tmp_path, monkeypatch):
    """A new engine whose framework is absent: the registry line alone yields the hint."""
    (tmp_path / "ptb_lstm_probe_engine.py").write_text(
        "import ptb_lstm_absent_framework  # noqa: F401\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(
        REGISTRY,
        "probe",
        ("ptb_lstm_probe_engine", "ProbeEngine", "probe", "ptb_lstm_absent_framework", "Absent"),
    )
    with pytest.raises(UserError) as error:
        engine_class("probe")
    message = str(error.value)
    assert message.startswith(
        "--engine probe needs Absent, which is not installed; install it with: "
    )
    assert " -m pip install " in message and message.endswith("[probe]'")
    assert "probe" not in installed_engines()


def test_the_install_hint_runs_as_printed_from_the_checkout():
    """From the source folder (as make installs it) the hint installs this checkout's extra
    with this interpreter's pip, so a copied line installs into the right environment."""
    code = "from ptb_lstm.engines import install_hint; print(install_hint('torch'))"
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    python, rest = shown.split(" -m pip install -e ")
    assert rest == "'.[torch]'"
    assert Path(REPO, python).resolve() == Path(sys.executable).resolve()


def test_engines_without_a_framework_need_no_install():
    assert install_hint("numpy") == ""
    assert "numpy" in installed_engines()


def test_help_lists_every_registered_engine_and_its_extra():
    result = run_cli("train", "--help", env={"COLUMNS": "400"})  # no line breaks in a name
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for name in REGISTRY:
        assert name in text
    for name in OPTIONAL:
        assert f"the [{spec(name).extra}] extra" in text
    assert "--device {auto,cpu,cuda}" in text


def test_agree_offers_every_other_registered_engine():
    text = run_cli("agree", "--help").stdout
    choices = text[text.index("--engine {") + len("--engine {") :].split("}")[0].split(",")
    assert choices == [name for name in REGISTRY if name != "numpy"]


def test_the_numpy_engine_refuses_a_gpu_with_a_one_line_error(tiny_dir, tmp_path):
    result = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(tiny_dir),
        "--max-steps",
        "1",
        "--device",
        "cuda",
        "--out",
        str(tmp_path / "run"),
    )
    assert_user_error(result, "--device cuda", "numpy engine runs on cpu only")


def test_an_unknown_device_is_refused():
    with pytest.raises(UserError, match="--device must be one of auto, cpu, cuda"):
        create_engine(
            "numpy", PRESETS["tiny"], init_params(PRESETS["tiny"], 11), "float32", device="tpu"
        )


# -- what the base class keeps for every engine ---------------------------------------------


@pytest.mark.parametrize("name", installed_engines())
def test_an_engine_writes_only_its_maths_the_base_keeps_the_carried_state(name):
    cls = engine_class(name)
    written_again = {"reset_state", "get_state", "set_state", "_state_for"} & set(vars(cls))
    assert not written_again, (name, written_again)


@pytest.mark.parametrize("name", installed_engines())
def test_the_carried_state_goes_in_and_out_as_numpy_copies(name):
    config = PRESETS["tiny"].replace(hidden_size=4, num_layers=2)
    engine = create_engine(name, config, init_params(config, 7), "float64", device="cpu")
    rng = np.random.default_rng(0)
    state = [(rng.normal(size=(3, 4)), rng.normal(size=(3, 4))) for _ in range(2)]
    engine.set_state(state)
    got = engine.get_state()
    for (h, c), (gh, gc) in zip(state, got, strict=True):
        assert isinstance(gh, np.ndarray) and gh.dtype == np.float64
        np.testing.assert_array_equal(gh, h)
        np.testing.assert_array_equal(gc, c)
    got[0][0][:] = 0.0  # a copy: changing it leaves the engine's state alone
    np.testing.assert_array_equal(engine.get_state()[0][0], state[0][0])
    engine.reset_state(2)
    assert [(h.shape, c.shape) for h, c in engine.get_state()] == [((2, 4), (2, 4))] * 2
    assert not any(np.any(a) for pair in engine.get_state() for a in pair)


@pytest.mark.parametrize("name", installed_engines())
def test_a_step_of_another_batch_size_starts_from_zeros(name):
    config = PRESETS["tiny"].replace(hidden_size=4, num_layers=2, num_steps=3)
    params = init_params(config, 7, np.float64)
    inputs = np.array([[1, 2, 3], [4, 5, 6]])
    carried = create_engine(name, config, params, "float64", device="cpu")
    carried.set_state([(np.full((3, 4), 0.5), np.full((3, 4), -0.5))] * 2)  # batch 3
    fresh = create_engine(name, config, params, "float64", device="cpu")
    fresh.reset_state(2)
    np.testing.assert_allclose(carried.logits(inputs), fresh.logits(inputs), rtol=0, atol=1e-12)
    assert [h.shape for h, _ in carried.get_state()] == [(2, 4)] * 2


@pytest.mark.parametrize(
    "name", [n for n in installed_engines() if n not in ("numpy", "numpy-reference")]
)
def test_an_engine_without_hand_written_gradients_says_so(name):
    config = PRESETS["tiny"]
    engine = create_engine(name, config, init_params(config, 7), "float64", device="cpu")
    inputs = np.zeros((config.batch_size, config.num_steps), np.int64)
    with pytest.raises(NotImplementedError, match=name):
        engine.gradients(inputs, inputs, engine.state)


def test_gradients_by_name_are_every_parameter_dense_in_the_canonical_order():
    from ptb_lstm.params import param_shapes

    config = PRESETS["tiny"].replace(hidden_size=4, num_layers=2, num_steps=3, batch_size=2)
    params = init_params(config, 7, np.float64)
    inputs, targets = np.array([[1, 1, 2], [3, 4, 1]]), np.array([[1, 2, 3], [4, 1, 0]])
    by_engine = {}
    for name in ("numpy", "numpy-reference"):
        engine = create_engine(name, config, params, "float64")
        by_engine[name] = engine.gradients(inputs, targets, engine.state).by_name()
    shapes = param_shapes(config, 7)
    for grads in by_engine.values():
        assert list(grads) == list(shapes)
        assert {n: g.shape for n, g in grads.items()} == shapes
    # Word 1 occurs three times: its embedding row sums the three positions' gradients.
    for name, grad in by_engine["numpy"].items():
        np.testing.assert_allclose(
            grad, by_engine["numpy-reference"][name], rtol=0, atol=1e-12, err_msg=name
        )
    assert not by_engine["numpy"]["embedding"][5:].any()  # words 5 and 6 are not in the batch
