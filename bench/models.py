"""Model benchmarks against ncps 1.0.1 and torch.nn.LSTM on identical inputs; prints figures and ratios.

    PYTHONPATH=. .venv/bin/python bench/models.py [--threads 2] [--quick]

Train step = forward over (B=32, L=64, 32 features) + MSE + backward + Adam. Activation memory is the
bytes autograd keeps for backward during one training forward (unique storages, via saved-tensor
hooks), the part of peak memory that grows with B x L (process peak RSS is too coarse: these heads'
activations fit in memory the allocator already holds after start-up). Latency = one control step at
batch 1.
ncps is run with its default dt = 1 (its per-sample timespans crash for B > 1); ours get per-sample dt.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn
from table import record

from liquid_nav.models.cfc import CfCCell, WiredCfCCell
from liquid_nav.models.export import export_step_onnx
from liquid_nav.models.heads import CellHead, GRUHead, LSTMHead
from liquid_nav.models.ltc import LTCCell
from liquid_nav.models.policy import Policy, PolicyConfig, PolicyStep
from liquid_nav.models.wiring import NCPConfig, build_ncp

BATCH, LENGTH, FEATURES, OUTPUTS = 32, 64, 32, 4
DENSE_UNITS = 64
NCP = NCPConfig()  # the published 18 inter + 12 command + 4 motor wiring, on 32 inputs here


def timed(fn: Callable[[], object], repeats: int, warmup: int = 3) -> List[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def activation_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes of the unique tensor storages autograd saves for backward while ``fn`` runs."""
    storages: Dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(storages.values())


class NcpsHead(nn.Module):
    """An ncps RNN (batch first) with dt = 1 and an optional readout, shaped like our heads."""

    def __init__(self, rnn: nn.Module, readout: nn.Module):
        super().__init__()
        self.rnn = rnn
        self.readout = readout

    def sequence(self, x: torch.Tensor, t: torch.Tensor, state: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        out, h = self.rnn(x, state)
        return self.readout(out), h

    def step(self, x: torch.Tensor, state: torch.Tensor, t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        out, h = self.sequence(x.unsqueeze(1), t, state)
        return out[:, 0], h


class TorchLSTM(nn.Module):
    """Plain torch.nn.LSTM + linear readout, no time input: the speed anchor."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(FEATURES, DENSE_UNITS, batch_first=True)
        self.readout = nn.Linear(DENSE_UNITS, OUTPUTS)
        self.state_size = 2 * DENSE_UNITS

    def sequence(self, x, t, state):
        out, _ = self.rnn(x)
        return self.readout(out), state


def build_heads() -> Dict[str, nn.Module]:
    import ncps.torch as ncps_torch
    from ncps.wirings import NCP as NcpsNCP

    wiring = build_ncp(NCP, FEATURES)

    def ncps_wiring():
        return NcpsNCP(NCP.inter_neurons, NCP.command_neurons, NCP.motor_neurons, NCP.sensory_fanout,
                       NCP.inter_fanout, NCP.recurrent_command_synapses, NCP.motor_fanin, seed=NCP.seed)

    dense = CfCCell(FEATURES, DENSE_UNITS, backbone_units=128, backbone_layers=1)
    return {
        "cfc_ncp": CellHead(WiredCfCCell(wiring), nn.Identity(), OUTPUTS),
        "ncps cfc_ncp": NcpsHead(ncps_torch.CfC(FEATURES, ncps_wiring(), batch_first=True), nn.Identity()),
        "ltc_ncp": CellHead(LTCCell(wiring), nn.Identity(), OUTPUTS),
        "ncps ltc_ncp": NcpsHead(ncps_torch.LTC(FEATURES, ncps_wiring(), batch_first=True), nn.Identity()),
        "cfc": CellHead(dense, nn.Linear(DENSE_UNITS, OUTPUTS), OUTPUTS),
        "ncps cfc": NcpsHead(ncps_torch.CfC(FEATURES, DENSE_UNITS, proj_size=OUTPUTS, batch_first=True,
                                            backbone_units=128, backbone_layers=1), nn.Identity()),
        "lstm": LSTMHead(FEATURES, DENSE_UNITS, OUTPUTS),
        "gru": GRUHead(FEATURES, DENSE_UNITS, OUTPUTS),
        "torch.nn.LSTM": TorchLSTM(),
    }


class HeadStep(nn.Module):
    """A head's step as a module forward, so TorchScript compiles exactly the step path."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor, state: torch.Tensor, t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.head.step(x, state, t)


def state_size(head: nn.Module) -> int:
    if isinstance(head, NcpsHead):
        return head.rnn.state_size
    return head.state_size


def bench_training(heads: Dict[str, nn.Module], rounds: int) -> Dict[str, Tuple[float, float, int]]:
    """Median and fastest train step per head; heads take turns each round so that load from other
    processes on a shared machine hits them alike."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, LENGTH, FEATURES, generator=generator)
    dts = torch.rand(BATCH, LENGTH, generator=generator) * 0.5 + 0.75
    target = torch.randn(BATCH, LENGTH, OUTPUTS, generator=generator)
    steps = {}
    for name, head in heads.items():
        head.train()
        optimiser = torch.optim.Adam(head.parameters(), lr=1e-3)
        state = torch.zeros(BATCH, state_size(head))

        def loss(head=head, state=state) -> torch.Tensor:
            return nn.functional.mse_loss(head.sequence(x, dts, state)[0], target)

        def train_step(loss=loss, optimiser=optimiser) -> None:
            optimiser.zero_grad(set_to_none=True)
            loss().backward()
            optimiser.step()

        steps[name] = (loss, train_step)
    samples: Dict[str, List[float]] = {name: [] for name in heads}
    for round_index in range(rounds + 2):
        for name, (_, train_step) in steps.items():
            start = time.perf_counter()
            train_step()
            if round_index >= 2:  # two warm-up rounds
                samples[name].append(time.perf_counter() - start)
    results = {}
    print(f"\n== train step: B={BATCH} L={LENGTH} input {FEATURES}, forward + backward + Adam, {rounds} rounds ==")
    print(f"{'head':>16} {'params':>8} {'median ms':>10} {'fastest ms':>11} {'activations MB':>15}")
    for name, head in heads.items():
        median, fastest = statistics.median(samples[name]), min(samples[name])
        memory = activation_bytes(steps[name][0])
        params = sum(p.numel() for p in head.parameters() if p.requires_grad)
        results[name] = (median, fastest, memory)
        print(f"{name:>16} {params:>8} {median * 1e3:>10.1f} {fastest * 1e3:>11.1f} {memory / 2 ** 20:>15.1f}")
    return results


def bench_head_latency(heads: Dict[str, nn.Module], repeats: int, threads: int) -> None:
    import io

    import onnxruntime as ort

    print("\n== single step latency, batch 1, head only (eager / TorchScript / ONNX Runtime) ==")
    x, t = torch.randn(1, FEATURES), torch.ones(1)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    for name in ("cfc_ncp", "ncps cfc_ncp", "ltc_ncp", "ncps ltc_ncp", "cfc", "lstm", "gru"):
        head = heads[name].eval()
        state = torch.zeros(1, state_size(head))
        row = f"{name:>16}: eager p50 {_p50(lambda: head.step(x, state, t), repeats):.3f} ms"
        if not name.startswith("ncps"):
            scripted = torch.jit.script(HeadStep(head).eval())
            row += f" | TorchScript p50 {_p50(lambda: scripted(x, state, t), repeats):.3f} ms"
            buffer = io.BytesIO()
            with torch.no_grad():
                torch.onnx.export(HeadStep(head).eval(), (x, state, t), buffer, input_names=["x", "state", "t"],
                                  opset_version=17, dynamo=False)
            session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
            feeds = {"x": x.numpy(), "state": state.numpy(), "t": t.numpy()}
            row += f" | ONNX Runtime p50 {_p50(lambda: session.run(None, feeds), repeats):.3f} ms"
        print(row)


def _p50(fn: Callable[[], object], repeats: int) -> float:
    with torch.inference_mode():
        return statistics.median(timed(fn, repeats, warmup=10)) * 1e3


def bench_policy_latency(repeats: int, threads: int) -> Dict[str, float]:
    import onnxruntime as ort

    print("\n== single control step latency, batch 1, full policy (CNN + head), p50 / p90 ms ==")
    fastest = {}
    for preset, config in (("144x256", PolicyConfig()), ("72x128", PolicyConfig.small())):
        for head in ("cfc_ncp", "ltc_ncp", "lstm"):
            policy = Policy.from_config(PolicyConfig.from_dict({**config.to_dict(), "head": head})).eval()
            step = PolicyStep(policy).eval()
            scripted = torch.jit.script(step)
            image = torch.randint(0, 256, (1,) + config.preprocessing.shape, dtype=torch.uint8)
            state, dt = policy.initial_state(1), torch.full((1,), 1 / 30)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(export_step_onnx(policy), options, providers=["CPUExecutionProvider"])
            feeds = {"image": image.numpy(), "state": state.numpy(), "dt": dt.numpy()}
            figures = {}
            with torch.inference_mode():
                for backend, fn in (("eager", lambda: step(image, state, dt)),
                                    ("torchscript", lambda: scripted(image, state, dt)),
                                    ("onnxruntime", lambda: session.run(None, feeds))):
                    samples = sorted(timed(fn, repeats, warmup=10))
                    figures[backend] = (samples[len(samples) // 2] * 1e3, samples[int(len(samples) * 0.9)] * 1e3)
            best = min(figures, key=lambda k: figures[k][0])
            fastest[f"{preset} {head}"] = figures[best][0]
            print(f"{preset:>8} {head:>8}: " + " | ".join(f"{k} {v[0]:.2f} / {v[1]:.2f}" for k, v in figures.items())
                  + f"   fastest: {best}")
    return fastest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # deprecation notices of the TorchScript / legacy ONNX APIs used here
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    train_repeats, step_repeats = (3, 20) if args.quick else (15, 300)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    heads = build_heads()
    train = bench_training(heads, train_repeats)
    bench_head_latency(heads, step_repeats, args.threads)
    fastest = bench_policy_latency(step_repeats, args.threads)

    def ratio(a: str, b: str, index: int) -> str:
        if index == 2:
            return f"{train[a][2] / train[b][2]:6.3f}"
        return f"{train[a][0] / train[b][0]:5.2f} (fastest runs: {train[a][1] / train[b][1]:5.2f})"

    print("\n== ratios (measured above; median, and of the fastest runs) vs targets ==")
    print(f"cfc_ncp train speed-up vs ncps:      {ratio('ncps cfc_ncp', 'cfc_ncp', 0)}   target >= 4")
    print(f"cfc_ncp train time / torch.nn.LSTM:  {ratio('cfc_ncp', 'torch.nn.LSTM', 0)}   target <= 2")
    print(f"ltc_ncp train speed-up vs ncps:      {ratio('ncps ltc_ncp', 'ltc_ncp', 0)}   target >= 3")
    print(f"ltc_ncp activation memory / ncps:    {ratio('ltc_ncp', 'ncps ltc_ncp', 2)}   target <= 0.333")
    print(f"cfc (dense) train speed-up vs ncps:  {ratio('ncps cfc', 'cfc', 0)}")
    for key, value in fastest.items():
        print(f"full policy {key:>16} fastest p50: {value:5.2f} ms   (target <= 2 ms)")
        record("models", f"full policy step p50, {key}", value, "ms", 1000 / 30, "30 Hz frame period", "<= 2 ms",
               value <= 2.0)
    for fast, slow, goal in (("ncps cfc_ncp", "cfc_ncp", 4.0), ("ncps ltc_ncp", "ltc_ncp", 3.0)):
        record("models", f"{slow} train step vs ncps", train[fast][0] / train[slow][0], "x faster", None, "",
               f">= {goal:g}x", train[fast][0] / train[slow][0] >= goal)
    record("models", "cfc_ncp train time / torch.nn.LSTM", train["cfc_ncp"][0] / train["torch.nn.LSTM"][0], "x", None,
           "", "<= 2", train["cfc_ncp"][0] / train["torch.nn.LSTM"][0] <= 2.0)


if __name__ == "__main__":
    main()
