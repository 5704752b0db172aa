"""Bad ``liquid-nav`` command lines: each exits non-zero with one line naming the argument or file and what
was expected, and a failed command leaves every file as it was.

``CASES`` is the table. ``{tmp}`` in an argument is the test's directory, where ``needs`` files are made
first (see ``FILES``); ``patch`` simulates what the test machine cannot produce (an unwritable directory
for root). A few rows with status 0 pin fixes whose input is odd but valid.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import pytest
import torch
import yaml

from liquid_nav.cli import main
from liquid_nav.models.checkpoint import save_checkpoint
from liquid_nav.paths import worlds_dir
from tests.models.conftest import small_policy


def _checkpoint(path: Path, readout_bias: Optional[float] = None) -> None:
    policy = small_policy("gru")
    if readout_bias is not None:
        with torch.no_grad():
            policy.head.readout.bias.view(-1)[:2] = readout_bias
    save_checkpoint(path, policy, {"note": "x"})


def _world(path: Path, **target) -> None:
    data = yaml.safe_load((worlds_dir() / "forest.yaml").read_text(encoding="utf-8"))
    data["target"].update(target)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


FILES: Dict[str, Callable[[Path], None]] = {
    "good.lnav": _checkpoint,
    "nan.lnav": functools.partial(_checkpoint, readout_bias=float("nan")),
    "overflow.lnav": functools.partial(_checkpoint, readout_bias=3e38),  # finite weights, infinite command
    "garbage.lnav": lambda path: path.write_bytes(b"garbage"),
    "link.lnav": lambda path: path.symlink_to(path.parent / "good.lnav"),
    "existing.onnx": lambda path: path.write_bytes(b"an older export"),
    "notes.txt": lambda path: path.write_text("not a directory\n"),
    "folder": lambda path: path.mkdir(),
    "latin1.yaml": lambda path: path.write_bytes("name: Müllheim\n".encode("latin-1")),
    "invalid.yaml": lambda path: path.write_bytes(b"name: [unclosed\n"),
    "crowded.yaml": functools.partial(_world, clearance=18.0),  # loads, but no target fits among 150 trees
}


def _unwritable(directory: str) -> Callable[[Path, pytest.MonkeyPatch], None]:
    """``{tmp}/directory`` refuses writes (root writes anywhere, so os.access is told so)."""
    def patch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        real_access = os.access
        locked = tmp_path / directory
        monkeypatch.setattr(os, "access", lambda path, mode, **kwargs: Path(path) != locked
                            and real_access(path, mode, **kwargs))
    return patch


def _episodes_cut_after_one_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from liquid_nav.sim import rollout

    monkeypatch.setattr(rollout, "run_episode", functools.partial(rollout.run_episode, max_steps=1))


def _nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No patch."""


@dataclass(frozen=True)
class Run:
    """One command line, its exit status and a fragment of its error (or, for status 0, of its output)."""

    argv: Tuple[str, ...]
    status: int
    message: str
    needs: Tuple[str, ...] = ()
    patch: Callable[[Path, pytest.MonkeyPatch], None] = _nothing
    written: Tuple[str, ...] = ()  # files a successful run must create


def _case(case_id: str, argv: str, status: int, message: str, *needs: str, patch=_nothing, written=()):
    return pytest.param(Run(tuple(argv.split()), status, message, needs, patch, tuple(written)), id=case_id)


CASES = [
    # export
    _case("export-onto-its-input", "export {tmp}/good.lnav {tmp}/good.lnav", 1,
          "error: output {tmp}/good.lnav is the input checkpoint", "good.lnav"),
    _case("export-onto-its-input-with-force", "export {tmp}/good.lnav {tmp}/good.lnav --force", 1,
          "is the input checkpoint", "good.lnav"),
    _case("export-onto-a-link-to-its-input", "export {tmp}/good.lnav {tmp}/link.lnav --force", 1,
          "is the input checkpoint", "good.lnav", "link.lnav"),
    _case("export-over-an-existing-file", "export {tmp}/good.lnav {tmp}/existing.onnx", 1,
          "output {tmp}/existing.onnx already exists; pass --force to overwrite it", "good.lnav", "existing.onnx"),
    _case("export-onto-a-directory", "export {tmp}/good.lnav {tmp}/folder --force", 2,
          "argument output: {tmp}/folder is a directory; expected a file name", "good.lnav", "folder"),
    _case("export-below-a-file", "export {tmp}/good.lnav {tmp}/notes.txt/step.onnx", 2,
          "argument output: {tmp}/notes.txt/step.onnx: {tmp}/notes.txt is a file, not a directory",
          "good.lnav", "notes.txt"),
    _case("export-into-an-unwritable-directory", "export {tmp}/good.lnav {tmp}/folder/step.onnx", 2,
          "the directory {tmp}/folder is not writable", "good.lnav", "folder", patch=_unwritable("folder")),
    _case("export-nan-weights", "export {tmp}/nan.lnav {tmp}/step.onnx --check", 1,
          "error: {tmp}/nan.lnav: non-finite weights, refusing to load them for flight: head.readout.bias: "
          "2 of 4 values are NaN or infinite", "nan.lnav"),
    _case("export-check-with-infinite-commands", "export {tmp}/overflow.lnav {tmp}/step.onnx --check", 1,
          "error: --check failed, {tmp}/step.onnx not written: step 0 gave a non-finite command", "overflow.lnav"),
    _case("export-a-garbage-checkpoint", "export {tmp}/garbage.lnav {tmp}/step.onnx", 1,
          "not a liquid_nav checkpoint", "garbage.lnav"),
    _case("export-a-missing-checkpoint", "export {tmp}/missing.lnav {tmp}/step.onnx", 1,
          "{tmp}/missing.lnav: checkpoint file not found"),
    _case("export-into-missing-directories", "export {tmp}/good.lnav {tmp}/new/dirs/step.onnx", 0,
          "wrote {tmp}/new/dirs/step.onnx", "good.lnav", written=["new/dirs/step.onnx"]),
    # model-info
    _case("model-info-unknown-head", "model-info --head bogus", 1,
          "error: --head 'bogus': policy config: head must be one of ['cfc_ncp'"),
    _case("model-info-unknown-image-preset", "model-info --image-preset huge", 2,
          "argument --image-preset: invalid choice: 'huge'"),
    _case("model-info-garbage-checkpoint", "model-info {tmp}/garbage.lnav", 1,
          "error: {tmp}/garbage.lnav: not a liquid_nav checkpoint", "garbage.lnav"),
    _case("model-info-missing-checkpoint", "model-info {tmp}/missing.lnav", 1, "checkpoint file not found"),
    _case("model-info-nan-weights-warns", "model-info {tmp}/nan.lnav --json", 0,
          "warning: {tmp}/nan.lnav: non-finite weights (the backends refuse to fly them): head.readout.bias: "
          "2 of 4 values are NaN or infinite", "nan.lnav"),
    # render-world
    _case("render-world-unknown-world", "render-world atlantis --out {tmp}/x.png", 1,
          "error: unknown world 'atlantis'"),
    _case("render-world-non-utf8-world", "render-world {tmp}/latin1.yaml --out {tmp}/x.png", 1,
          "error: {tmp}/latin1.yaml: not UTF-8 text (byte 0xfc at offset 7)", "latin1.yaml"),
    _case("render-world-invalid-yaml", "render-world {tmp}/invalid.yaml --out {tmp}/x.png", 1,
          "error: {tmp}/invalid.yaml: not valid YAML at line 2", "invalid.yaml"),
    _case("render-world-unplaceable-target", "render-world {tmp}/crowded.yaml --out {tmp}/x.png", 1,
          "no valid start/target found for seed 0", "crowded.yaml"),
    _case("render-world-text-file-out", "render-world forest --out {tmp}/x.txt", 2,
          "argument --out: {tmp}/x.txt: '.txt' is not an image format; expected a name ending in ."),
    _case("render-world-out-is-a-directory", "render-world forest --out {tmp}/folder", 2,
          "argument --out: {tmp}/folder is a directory", "folder"),
    _case("render-world-out-below-a-file", "render-world forest --out {tmp}/notes.txt/x.png", 2,
          "{tmp}/notes.txt is a file, not a directory", "notes.txt"),
    _case("render-world-out-unwritable", "render-world forest --out {tmp}/folder/x.png", 2,
          "the directory {tmp}/folder is not writable", "folder", patch=_unwritable("folder")),
    _case("render-world-negative-seed", "render-world forest --seed -1 --out {tmp}/x.png", 2,
          "argument --seed: expected a non-negative integer, got '-1'"),
    _case("render-world-out-without-suffix", "render-world urban --camera small --out {tmp}/view/x", 0,
          "wrote {tmp}/view/x.png (urban", written=["view/x.png"]),
    # demo
    _case("demo-out-is-a-file", "demo --out {tmp}/notes.txt --worlds urban", 2,
          "argument --out: {tmp}/notes.txt is an existing file; expected a directory", "notes.txt"),
    _case("demo-out-below-a-file", "demo --out {tmp}/notes.txt/videos --worlds urban", 2,
          "{tmp}/notes.txt is a file, not a directory", "notes.txt"),
    _case("demo-out-unwritable", "demo --out {tmp}/folder --worlds urban", 2,
          "the directory {tmp}/folder is not writable", "folder", patch=_unwritable("folder")),
    _case("demo-unknown-world", "demo --out {tmp}/videos --worlds atlantis", 2, "error: unknown world 'atlantis'"),
    # expert-eval
    _case("expert-eval-min-success-nan", "expert-eval --world urban --min-success nan", 2,
          "argument --min-success: expected a fraction in [0, 1] (e.g. 0.9), got 'nan'"),
    _case("expert-eval-min-success-above-one", "expert-eval --world urban --min-success 1.5", 2,
          "expected a fraction in [0, 1] (e.g. 0.9), got '1.5'"),
    _case("expert-eval-min-success-negative", "expert-eval --world urban --min-success -0.1", 2,
          "got '-0.1'"),
    _case("expert-eval-min-success-inf", "expert-eval --world urban --min-success inf", 2, "got 'inf'"),
    _case("expert-eval-min-success-percent", "expert-eval --world urban --min-success 90%", 2, "got '90%'"),
    _case("expert-eval-zero-episodes", "expert-eval --world urban --episodes 0", 2, "--episodes must be >= 1"),
    _case("expert-eval-unknown-world", "expert-eval --world atlantis --episodes 1", 1,
          "error: unknown world 'atlantis'"),
    _case("expert-eval-below-min-success", "expert-eval --world urban --episodes 1 --min-success 0.5", 1,
          "error: success rate 0.0 % is below --min-success 50.0 %", patch=_episodes_cut_after_one_step),
]


def _snapshot(root: Path) -> Dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("run", CASES)
def test_bad_command_lines_fail_with_one_line_and_touch_no_file(run: Run, tmp_path, monkeypatch, capsys):
    for name in run.needs:
        FILES[name](tmp_path / name)
    run.patch(tmp_path, monkeypatch)
    before = _snapshot(tmp_path)
    try:
        status = main([argument.format(tmp=tmp_path) for argument in run.argv])
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    message = run.message.format(tmp=tmp_path)
    assert status == run.status, captured
    assert "Traceback" not in captured.err
    if run.status == 0:
        assert message in captured.out + captured.err
        assert set(_snapshot(tmp_path)) - set(before) == set(run.written)
        for name in run.written:
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~_umask()  # as open() would make it
        return
    lines = captured.err.strip().splitlines()  # argparse's usage or a progress bar may come first
    assert message in lines[-1] and [line for line in lines if "error:" in line] == lines[-1:]
    assert _snapshot(tmp_path) == before


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
