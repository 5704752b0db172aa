"""Training on a real (tiny) collected store: every head, exact resume after a kill, DAgger, CLI errors."""
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
import yaml

from liquid_nav.cli import main
from liquid_nav.data.collect import collect, collect_config
from liquid_nav.models.checkpoint import load_checkpoint
from liquid_nav.sim.env import EnvConfig
from liquid_nav.train.config import load_train_config
from liquid_nav.train.dagger import DaggerConfig, run_dagger
from liquid_nav.train.trainer import Trainer, TrainingError, read_log


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    collect(collect_config("forest", 4, 7, 1, camera="small", max_episode_seconds=2.0), out, progress=False)
    return out


def tiny(head="cfc_ncp", **overrides):
    config = load_train_config("quick")
    policy = replace(config.policy, head=head, units=16, backbone_units=16)
    values = dict(policy=policy, window=8, stride=8, batch_size=2, steps=3, validate_every=2, checkpoint_every=2,
                  log_every=1, validation_fraction=0.25, validation_windows=4, threads=1,
                  include_failed=True,  # 2 s episodes time out: they still teach
                  compile=False)  # compiling costs ~40 s; test_compiled_step_equals_the_plain_step covers it
    values.update(overrides)
    return replace(config, **values)


@pytest.mark.parametrize("head", ["cfc_ncp", "ltc_ncp", "cfc", "lstm", "gru", "ctrnn"])
def test_every_head_trains_and_logs_its_diagnostics(store, tmp_path, head):
    result = Trainer(tiny(head), store, tmp_path).run(progress=False)
    assert result.step == 3 and result.train_frames > 0 and result.validation_frames > 0
    rows = read_log(tmp_path)
    train_rows = [row for row in rows if row["kind"] == "train"]
    assert len(train_rows) == 3 and all(float(row["loss"]) > 0 for row in train_rows)
    assert all(float(row["cnn_grad_norm"]) > 0 and float(row["feature_std"]) > 0 for row in train_rows)
    if head == "ctrnn":  # tanh neurons: no gate
        assert all(row["gate_saturation"] == "" for row in train_rows)
    else:
        assert all(0.0 <= float(row["gate_saturation"]) <= 1.0 for row in train_rows)
    assert any(row["kind"] == "validation" for row in rows)
    policy, metadata = load_checkpoint(tmp_path / "checkpoints" / "best" / "policy.lnav")
    assert policy.config.head == head and metadata["train_config"]["steps"] == 3
    assert metadata["data"]["train_episodes"] == 3 and metadata["data"]["worlds"] == ["forest"]
    assert (tmp_path / "checkpoints" / "0000002" / "policy.lnav").is_file()


def test_a_log_of_an_older_format_keeps_its_columns(store, tmp_path):
    (tmp_path / "log.csv").write_text("step,kind,loss,elapsed_s\r\n1,train,0.5,1.0\r\n")
    trainer = Trainer(tiny(), store, tmp_path)
    trainer._log("train", {"loss": 0.25, "gate_saturation": 0.1}, elapsed_s=2.0)
    assert read_log(tmp_path) == [{"step": "1", "kind": "train", "loss": "0.5", "elapsed_s": "1.0"},
                                  {"step": "0", "kind": "train", "loss": "0.25", "elapsed_s": "2.0"}]


def test_compiled_step_equals_the_plain_step(store, tmp_path):
    # without dropout: a compiled graph draws its dropout masks with its own kernels (from the same step seed)
    policy = replace(tiny().policy, perception_dropout=0.0)
    plain = Trainer(tiny(policy=policy), store, tmp_path / "plain")
    compiled = Trainer(tiny(policy=policy, compile=True), store, tmp_path / "compiled")
    compiled.policy.load_state_dict(plain.policy.state_dict())
    figures = [trainer._train_step() for trainer in (plain, compiled)]
    assert figures[1]["loss"] == pytest.approx(figures[0]["loss"], rel=1e-4)
    assert figures[1]["cnn_grad_norm"] == pytest.approx(figures[0]["cnn_grad_norm"], rel=1e-3)
    for (name, a), b in zip(plain.policy.state_dict().items(), compiled.policy.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name
    assert list(compiled.policy.state_dict()) == list(plain.policy.state_dict())  # checkpoints keep their keys


def test_killed_and_resumed_training_equals_one_uninterrupted_run(store, tmp_path):
    config_path = tmp_path / "train.yaml"
    config = tiny(steps=24, checkpoint_every=3, validate_every=6)
    config_path.write_text(yaml.safe_dump(config.to_dict()))
    Trainer(load_train_config(config_path), store, tmp_path / "straight").run(progress=False)

    run = tmp_path / "interrupted"
    command = [sys.executable, "-m", "liquid_nav.cli", "train", "--config", str(config_path), "--data", str(store),
               "--out", str(run), "--no-progress"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL)
    state = run / "checkpoints" / "last" / "state.pt"
    deadline = time.monotonic() + 120
    while not state.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = torch.load(state, weights_only=True)["step"]
    assert 3 <= killed_at < 24, "the process must be killed mid-run"
    assert main(["train", "--config", str(config_path), "--data", str(store), "--out", str(run), "--resume",
                 "--no-progress"]) == 0
    straight, _ = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last" / "policy.lnav")
    resumed, metadata = load_checkpoint(run / "checkpoints" / "last" / "policy.lnav")
    assert metadata["step"] == 24
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6, rtol=0), name
    steps = [int(row["step"]) for row in read_log(run) if row["kind"] == "train"]
    assert steps == list(range(1, 25))  # rows of the killed continuation were dropped on resume


def test_dagger_round_adds_student_episodes_labelled_by_the_expert(store, tmp_path):
    from liquid_nav.data.store import EpisodeStore

    data = tmp_path / "data"
    collect(collect_config("forest", 2, 7, 1, camera="small", max_episode_seconds=2.0), data, progress=False)
    env = EnvConfig(world="forest", camera="small", max_episode_seconds=2.0)
    config = tiny(steps=2, validation_fraction=0.5)
    ids = lambda dataset: [episode.episode_id for episode in dataset.episodes]  # noqa: E731
    before = Trainer(config, data, tmp_path / "split")
    results = run_dagger(config, DaggerConfig(rounds=1, episodes_per_round=1, steps_per_round=2, eval_episodes=1),
                         env, data, tmp_path / "run", progress=False, log=lambda line: None)
    assert len(results) == 1 and results[0].round == 1
    store_after = EpisodeStore(data)
    dagger_ids = [i for i in store_after.episode_ids() if i.startswith("dagger1-")]
    assert len(dagger_ids) == 1 and store_after.metadata(dagger_ids[0])["source"] == "dagger-1"
    episode = store_after.read(dagger_ids[0], frames=False)
    assert episode.labels is not None and (episode.labels != episode.commands).any()
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last" / "policy.lnav")[1]["step"] == 4
    # the aggregated episode trains; no collected episode moved between training and validation
    after = Trainer(config, data, tmp_path / "split-after")
    assert ids(after.validation_set) == ids(before.validation_set)
    assert ids(after.train_set) == sorted(ids(before.train_set) + dagger_ids)
    # a rerun resumes: round 1 is done (nothing flown or trained); a second round adds its own episode and steps
    rerun = lambda rounds: run_dagger(config, DaggerConfig(rounds=rounds, episodes_per_round=1,  # noqa: E731
                                      steps_per_round=2, eval_episodes=0), env, data, tmp_path / "run",
                                      progress=False, log=lambda line: None)
    assert rerun(1) == [] and store_after.episode_ids() == EpisodeStore(data).episode_ids()
    [second] = rerun(2)
    assert second.round == 2 and second.heldout_success != second.heldout_success  # nan: no held-out check
    assert [i for i in EpisodeStore(data).episode_ids() if i.startswith("dagger2-")]
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last" / "policy.lnav")[1]["step"] == 6


def test_cli_errors_are_one_line(store, tmp_path, capsys):
    assert main(["train", "--config", "nope", "--data", str(store), "--out", str(tmp_path)]) == 1
    assert "unknown training config 'nope'" in capsys.readouterr().err
    assert main(["train", "--data", str(store), "--out", str(tmp_path / "r")]) == 1
    assert "no usable episodes (of 4; failed expert episodes are skipped" in capsys.readouterr().err
    config_path = tmp_path / "train.yaml"
    config_path.write_text(yaml.safe_dump(tiny().to_dict()))
    assert main(["train", "--config", str(config_path), "--data", str(store), "--out", str(tmp_path / "r"),
                 "--resume"]) == 1
    assert "nothing to resume" in capsys.readouterr().err
    with pytest.raises(TrainingError, match="no such episode store"):
        Trainer(tiny(), tmp_path / "missing", tmp_path / "r2")
    for flag, value, message in (("--rounds", "0", "--rounds must be >= 1"),
                                 ("--episodes", "-1", "--episodes must be >= 0"),
                                 ("--round-steps", "0", "--round-steps must be >= 1")):
        assert main(["dagger", "--data", str(store), "--out", str(tmp_path / "d"), flag, value]) == 1
        assert message in capsys.readouterr().err


def test_curves_plot_the_logged_diagnostics_of_runs(store, tmp_path, capsys):
    import cv2

    Trainer(tiny(), store, tmp_path / "a").run(progress=False)
    Trainer(tiny("lstm"), store, tmp_path / "b").run(progress=False)
    out = tmp_path / "curves.png"
    assert main(["curves", f"cfc={tmp_path / 'a'}", str(tmp_path / "b"), "--out", str(out)]) == 0
    image = cv2.imread(str(out))
    assert image is not None and image.shape[1] > 1000 and image.std() > 10
    assert main(["curves", str(tmp_path / "missing"), "--out", str(out)]) == 1
    assert "no log.csv (not a liquid-nav train run directory)" in capsys.readouterr().err
