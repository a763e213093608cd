from pathlib import Path

import pytest

from ptb_lstm.config import PRESETS, apply_overrides, load_config, parse_sets
from ptb_lstm.errors import UserError


def test_small_preset_is_the_papers_small_model():
    small = PRESETS["small"]
    assert (small.num_layers, small.hidden_size, small.num_steps) == (2, 200, 20)
    assert small.batch_size == 20
    assert (small.init_scale, small.learning_rate, small.max_grad_norm) == (0.1, 1.0, 5.0)
    assert (small.epochs, small.epochs_at_full_lr) == (13, 4)
    assert (small.lr_decay, small.dropout) == (0.5, 0.0)


def test_medium_and_large_presets_follow_the_tutorial():
    assert PRESETS["medium"].hidden_size == 650 and PRESETS["medium"].dropout == 0.5
    assert PRESETS["large"].hidden_size == 1500 and PRESETS["large"].max_grad_norm == 10.0
    assert PRESETS["large"].lr_decay == pytest.approx(1 / 1.15)


def test_learning_rate_schedule_decays_after_full_rate_epochs():
    small = PRESETS["small"]
    assert [small.lr_at_epoch(e) for e in (1, 4, 5, 6, 13)] == [1.0, 1.0, 0.5, 0.25, 0.5**9]


def test_set_overrides_coerce_types():
    config = apply_overrides(PRESETS["small"], parse_sets(["hidden_size=64", "dropout=0.25"]))
    assert config.hidden_size == 64 and config.dropout == 0.25


@pytest.mark.parametrize(
    "pair, fragment",
    [
        ("hiden_size=3", "unknown config key 'hiden_size'"),
        ("hidden_size=-4", "hidden_size must be > 0"),
        ("batch_size=0", "batch_size must be > 0"),
        ("num_steps=2.5", "num_steps must be an integer"),
        ("dropout=1.0", "dropout must be in [0, 1)"),
        ("learning_rate=fast", "learning_rate must be a number"),
    ],
)
def test_bad_overrides_name_the_problem(pair, fragment):
    with pytest.raises(UserError, match=None) as caught:
        apply_overrides(PRESETS["small"], parse_sets([pair]))
    assert fragment in str(caught.value)


def test_unknown_key_lists_valid_keys():
    with pytest.raises(UserError) as caught:
        apply_overrides(PRESETS["small"], {"nope": "1"})
    assert "hidden_size" in str(caught.value) and "max_grad_norm" in str(caught.value)


def test_toml_file_with_every_field(tmp_path: Path):
    fields = PRESETS["tiny"].to_dict() | {"hidden_size": 7}
    path = tmp_path / "c.toml"
    path.write_text("\n".join(f"{k} = {v!r}" for k, v in fields.items()))
    assert load_config(str(path)).hidden_size == 7


def test_toml_file_based_on_a_preset(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text('preset = "small"\nepochs = 2\n')
    config = load_config(str(path))
    assert config.epochs == 2 and config.hidden_size == 200


def test_invalid_toml_is_a_user_error(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text("hidden_size = = 3")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config(str(path))


def test_unknown_preset_lists_presets():
    with pytest.raises(UserError, match="small, medium, large, tiny"):
        load_config("huge")
