"""Training configs: presets load, bad keys and values are refused naming the key."""
import pytest
import yaml

from liquid_nav.train.config import TrainConfigError, load_train_config, train_config_path


def test_presets_load_with_their_image_sizes():
    quick, paper = load_train_config("quick"), load_train_config("paper")
    assert quick.policy.preprocessing.shape == (72, 128, 3) and quick.policy.head == "cfc_ncp"
    assert paper.policy.preprocessing.shape == (144, 256, 3) and paper.window == 64
    assert load_train_config("quick", steps=7).steps == 7


@pytest.mark.parametrize("change, key, expected", [
    ({"stepz": 3}, "stepz", "unknown key"),
    ({"optim": {"lr": -1}}, "optim.lr", "a number in"),
    ({"optim": {"lr": float("nan")}}, "optim.lr", "a number in"),
    ({"window": 2.5}, "window", "an integer"),
    ({"augment": {"noise": "lots"}}, "augment.noise", "a number"),
    ({"policy": {"head": "transformer"}}, "policy", "head must be one of"),
    ({"policy": "cfc"}, "policy", "a mapping"),
    ({"burn_in": 40}, "burn_in", "fewer frames than window"),
    ({"closed_loop": {"every": -1}}, "closed_loop.every", "an integer in"),
    ({"include_failed": "yes"}, "include_failed", "true or false"),
])
def test_bad_values_name_the_key(tmp_path, change, key, expected):
    data = yaml.safe_load(train_config_path("quick").read_text())
    data.update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(TrainConfigError) as error:
        load_train_config(path)
    assert str(path) in str(error.value) and f"'{key}'" in str(error.value) and expected in str(error.value)


def test_unknown_preset_and_bad_yaml(tmp_path):
    with pytest.raises(TrainConfigError, match="unknown training config 'fast'"):
        load_train_config("fast")
    path = tmp_path / "broken.yaml"
    path.write_text("steps: [1,\n")
    with pytest.raises(TrainConfigError, match="not valid YAML"):
        load_train_config(path)
