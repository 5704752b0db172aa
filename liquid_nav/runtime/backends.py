"""Inference backends: run one policy control step per camera frame and keep the recurrent state.

Every backend takes an RGB uint8 frame of any size, resizes it with
:func:`liquid_nav.models.preprocessing.prepare_frame`, steps the policy with the elapsed time in seconds
and returns the command (vx, vy, vz, yaw_rate) as float32 (4,). Backends do not judge the output
(non-finite commands are the caller's business).

``torch``        eager PyTorch on ``cpu`` or ``cuda``.
``torchscript``  the same step compiled with ``torch.jit.script``.
``onnxruntime``  the exported ONNX step; providers by device: ``cpu`` -> CPU, ``cuda`` -> CUDA + CPU,
                 ``tensorrt`` -> TensorRT (FP16, engine cache) + CUDA + CPU.
``tensorrt``     a TensorRT engine built on the device from the ONNX step (cached next to the ONNX file
                 or in the cache directory), run through torch CUDA buffers.
GPU libraries are imported only when such a backend is created; a missing one raises
:class:`BackendUnavailableError` saying what to install.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from liquid_nav.models.preprocessing import PreprocessingConfig, prepare_frame

BACKEND_NAMES = ("torch", "torchscript", "onnxruntime", "tensorrt")
PathLike = Union[str, "os.PathLike[str]"]


class BackendUnavailableError(RuntimeError):
    """The requested backend or device cannot run on this machine."""


def default_cache_dir() -> Path:
    """Where exported ONNX files and TensorRT engines are cached (``$LIQUID_NAV_CACHE`` overrides)."""
    return Path(os.environ.get("LIQUID_NAV_CACHE", Path.home() / ".cache" / "liquid_nav"))


class InferenceBackend:
    """Base class: ``reset()``, ``step(frame, dt) -> (4,) float32``, ``input_shape`` (H, W, 3)."""

    name = "base"

    def __init__(self, preprocessing: PreprocessingConfig, state_size: int):
        self.preprocessing = preprocessing
        self.state_size = state_size

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        return self.preprocessing.shape

    def reset(self) -> None:
        """Forget the recurrent state (next step starts from zeros)."""
        raise NotImplementedError

    def step(self, frame_rgb_u8: np.ndarray, dt_seconds: float) -> np.ndarray:
        """One control step on a frame of any size; returns (vx, vy, vz, yaw_rate) float32."""
        raise NotImplementedError


class TorchBackend(InferenceBackend):
    """Eager or TorchScript PyTorch; the state stays on the device between steps."""

    def __init__(self, policy, device: str = "cpu", script: bool = False, threads: int = 0):
        import torch

        if threads:
            torch.set_num_threads(threads)  # process-wide: torch has no per-module CPU pool

        from liquid_nav.models.policy import PolicyStep

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(f"torch backend: device {device!r} requested but this torch build "
                                          f"({torch.__version__}) sees no CUDA device")
        super().__init__(policy.config.preprocessing, policy.state_size)
        self._torch = torch
        self.device = torch.device(device)
        self.name = "torchscript" if script else "torch"
        module = PolicyStep(policy.to(self.device)).eval()
        self._step = torch.jit.script(module) if script else module
        self.reset()

    def reset(self) -> None:
        self._state = self._torch.zeros(1, self.state_size, device=self.device)

    def step(self, frame_rgb_u8: np.ndarray, dt_seconds: float) -> np.ndarray:
        torch = self._torch
        image = torch.from_numpy(prepare_frame(frame_rgb_u8, self.preprocessing)).unsqueeze(0).to(self.device)
        dt = torch.full((1,), float(dt_seconds), device=self.device)
        with torch.inference_mode():
            command, self._state = self._step(image, self._state, dt)
        return command[0].float().cpu().numpy()


ORT_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


class OnnxRuntimeBackend(InferenceBackend):
    """ONNX Runtime session over the exported step; ``device`` picks the execution providers."""

    name = "onnxruntime"

    def __init__(self, onnx_model: Union[bytes, Path], device: str = "cpu", threads: int = 0,
                 cache_dir: Optional[Path] = None):
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise BackendUnavailableError("onnxruntime backend: the onnxruntime package is not installed "
                                          "(pip install onnxruntime, or onnxruntime-gpu / the Jetson wheel)") from error
        from liquid_nav.models.export import config_from_onnx_metadata

        if device not in ORT_PROVIDERS:
            raise ValueError(f"onnxruntime backend: device must be one of {sorted(ORT_PROVIDERS)}, got {device!r}")
        wanted = ORT_PROVIDERS[device]
        available = ort.get_available_providers()
        if wanted[0] not in available:
            raise BackendUnavailableError(f"onnxruntime backend: device {device!r} needs {wanted[0]}, but this "
                                          f"onnxruntime build offers {available}")
        options = ort.SessionOptions()
        if threads:
            # A fixed small pool that sleeps between frames: the control step is tiny, and spinning
            # workers would take whole cores from the camera driver and the other nodes.
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers: List[Union[str, Tuple[str, Dict[str, str]]]] = list(wanted)
        if device == "tensorrt":
            engine_dir = Path(cache_dir or default_cache_dir()) / "ort_trt"
            engine_dir.mkdir(parents=True, exist_ok=True)
            providers[0] = ("TensorrtExecutionProvider", {"trt_fp16_enable": "True", "trt_engine_cache_enable": "True",
                                                          "trt_engine_cache_path": str(engine_dir)})
        name = "<in-memory model>" if isinstance(onnx_model, bytes) else str(onnx_model)
        if not isinstance(onnx_model, bytes):
            check_onnx_file(Path(onnx_model))
        source = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
        try:
            self._session = ort.InferenceSession(source, options, providers=providers)
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own pybind11 exception types
            raise ValueError(f"{name}: onnxruntime cannot load this model: {_first_line(error)}") from error
        config = config_from_onnx_metadata(self._session.get_modelmeta().custom_metadata_map, name)
        super().__init__(config.preprocessing, self._check_io(name, config.preprocessing.shape))
        self.reset()

    def _check_io(self, name: str, image_shape: Tuple[int, int, int]) -> int:
        """Refuse a graph whose inputs/outputs are not the exported step's; returns the state size."""
        from liquid_nav.models.export import INPUT_NAMES, OUTPUT_NAMES

        inputs = {item.name: item.shape for item in self._session.get_inputs()}
        outputs = tuple(item.name for item in self._session.get_outputs())
        if tuple(inputs) != INPUT_NAMES or outputs != OUTPUT_NAMES:
            raise ValueError(f"{name}: ONNX inputs {list(inputs)} / outputs {list(outputs)} are not those of an "
                             f"exported control step ({list(INPUT_NAMES)} / {list(OUTPUT_NAMES)})")
        if tuple(inputs["image"]) != (1,) + image_shape:
            raise ValueError(f"{name}: ONNX image input is {inputs['image']} but the stored preprocessing "
                             f"config expects {[1, *image_shape]}")
        return int(inputs["state"][1])

    def reset(self) -> None:
        self._state = np.zeros((1, self.state_size), dtype=np.float32)

    def step(self, frame_rgb_u8: np.ndarray, dt_seconds: float) -> np.ndarray:
        image = prepare_frame(frame_rgb_u8, self.preprocessing)[None]
        command, self._state = self._session.run(
            None, {"image": image, "state": self._state, "dt": np.array([dt_seconds], dtype=np.float32)})
        return command[0].astype(np.float32)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def check_onnx_file(path: Path) -> None:
    """Refuse, with one line naming ``path``, a missing or unparsable ONNX file and one whose weights hold NaN
    or infinity (an export of a diverged model must not fly)."""
    import onnx
    from onnx import numpy_helper

    if not path.is_file():
        raise ValueError(f"{path}: ONNX file not found")
    try:
        model = onnx.load(str(path))
    except Exception as error:  # noqa: BLE001 - protobuf decode errors have many types
        raise ValueError(f"{path}: not an ONNX model ({_first_line(error)})") from error
    bad = []
    for initializer in model.graph.initializer:
        weights = numpy_helper.to_array(initializer)
        if weights.dtype.kind == "f" and not np.all(np.isfinite(weights)):
            bad.append(f"{initializer.name}: {int(np.count_nonzero(~np.isfinite(weights)))} of {weights.size} values")
    if bad:
        raise ValueError(f"{path}: non-finite ONNX weights, refusing to fly it ({'; '.join(bad[:2])}"
                         f"{f' and {len(bad) - 2} more' if len(bad) > 2 else ''}); re-export a good checkpoint")


class TensorRTBackend(InferenceBackend):
    """TensorRT engine (FP16 where supported) built from the ONNX step on the target device.

    The serialised engine is cached under ``cache_dir`` keyed by the ONNX bytes' SHA-256, so the slow
    build runs once per model and device. Buffers are torch CUDA tensors (torch ships in JetPack).
    """

    name = "tensorrt"

    def __init__(self, onnx_model: bytes, config, cache_dir: Optional[Path] = None, fp16: bool = True):
        try:
            import tensorrt as trt
        except ImportError as error:
            raise BackendUnavailableError("tensorrt backend: the tensorrt Python package is not available "
                                          "(on a Jetson it comes with JetPack: apt install python3-libnvinfer)") from error
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailableError("tensorrt backend: needs a CUDA device visible to torch")
        super().__init__(config.preprocessing, 0)
        self._torch = torch
        logger = trt.Logger(trt.Logger.WARNING)
        engine_path = Path(cache_dir or default_cache_dir()) / "trt" / (
            hashlib.sha256(onnx_model).hexdigest()[:24] + ("_fp16" if fp16 else "") + ".engine")
        if not engine_path.is_file():
            engine_path.parent.mkdir(parents=True, exist_ok=True)
            engine_path.write_bytes(self._build_engine(trt, logger, onnx_model, fp16))
        runtime = trt.Runtime(logger)
        self._engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self._engine is None:
            raise BackendUnavailableError(f"tensorrt backend: cannot deserialise the engine {engine_path}; "
                                          "delete it to rebuild")
        self._context = self._engine.create_execution_context()
        self._buffers = {}
        for index in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(index)
            shape = tuple(self._engine.get_tensor_shape(name))
            dtype = torch.uint8 if name == "image" else torch.float32
            self._buffers[name] = torch.zeros(shape, dtype=dtype, device="cuda")
            self._context.set_tensor_address(name, self._buffers[name].data_ptr())
        self.state_size = int(self._buffers["state"].shape[1])
        self._stream = torch.cuda.Stream()
        self._stream.wait_stream(torch.cuda.current_stream())  # buffers were zeroed on the default stream
        self.reset()

    @staticmethod
    def _build_engine(trt, logger, onnx_model: bytes, fp16: bool) -> bytes:
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(onnx_model):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendUnavailableError(f"tensorrt backend: the ONNX parser rejected the model: {errors}")
        build_config = builder.create_builder_config()
        if fp16 and builder.platform_has_fast_fp16:
            build_config.set_flag(trt.BuilderFlag.FP16)
        serialized = builder.build_serialized_network(network, build_config)
        if serialized is None:
            raise BackendUnavailableError("tensorrt backend: engine build failed (see the TensorRT log above)")
        return bytes(serialized)

    def reset(self) -> None:
        with self._torch.cuda.stream(self._stream):  # ordered before the next step's execution
            self._buffers["state"].zero_()

    def step(self, frame_rgb_u8: np.ndarray, dt_seconds: float) -> np.ndarray:
        torch = self._torch
        image = torch.from_numpy(prepare_frame(frame_rgb_u8, self.preprocessing))
        with torch.cuda.stream(self._stream):
            self._buffers["image"].copy_(image.unsqueeze(0), non_blocking=True)
            self._buffers["dt"].fill_(float(dt_seconds))
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                # the command buffer still holds the previous step's command: never return it as new
                raise RuntimeError("tensorrt backend: execute_async_v3 failed (see the TensorRT log)")
            self._buffers["state"].copy_(self._buffers["new_state"])
            command = self._buffers["command"][0].cpu()
        return command.numpy().astype(np.float32)


def make_backend_from_policy(policy, name: str = "torch", device: str = "cpu",
                             cache_dir: Optional[Path] = None, threads: int = 0) -> InferenceBackend:
    """A backend for an in-memory policy (exporting it to ONNX in memory where the backend needs that).

    The torch backends use the policy object itself: it is moved to ``device`` and put in eval mode.
    ``threads`` > 0 caps the CPU threads of the torch / ONNX Runtime backends (0 = library default).
    """
    if name not in BACKEND_NAMES:
        raise ValueError(f"unknown inference backend {name!r}; expected one of {list(BACKEND_NAMES)}")
    if name in ("torch", "torchscript"):
        return TorchBackend(policy, device=device, script=name == "torchscript", threads=threads)
    from liquid_nav.models.export import export_step_onnx

    onnx_model = export_step_onnx(policy)
    if name == "onnxruntime":
        return OnnxRuntimeBackend(onnx_model, device=device, threads=threads, cache_dir=cache_dir)
    return TensorRTBackend(onnx_model, policy.config, cache_dir=cache_dir)


def make_backend(name: str, checkpoint_path: PathLike, device: str = "cpu",
                 cache_dir: Optional[Path] = None, threads: int = 0) -> InferenceBackend:
    """A backend from a checkpoint file, or (onnxruntime / tensorrt) directly from an exported ``.onnx`` file.

    A checkpoint whose weights hold NaN or infinity is refused (:class:`CheckpointError` naming the tensor).
    ``threads`` > 0 caps the CPU threads of the torch / ONNX Runtime backends (0 = library default).
    """
    if name not in BACKEND_NAMES:
        raise ValueError(f"unknown inference backend {name!r}; expected one of {list(BACKEND_NAMES)}")
    path = Path(checkpoint_path)
    if path.suffix == ".onnx":
        if name == "onnxruntime":
            return OnnxRuntimeBackend(path, device=device, threads=threads, cache_dir=cache_dir)
        if name == "tensorrt":
            from liquid_nav.models.export import config_from_onnx_metadata
            import onnx

            check_onnx_file(path)
            model = onnx.load(str(path))
            config = config_from_onnx_metadata({p.key: p.value for p in model.metadata_props}, str(path))
            return TensorRTBackend(path.read_bytes(), config, cache_dir=cache_dir)
        raise ValueError(f"backend {name!r} needs a liquid_nav checkpoint, not an ONNX file ({path})")
    from liquid_nav.models.checkpoint import load_checkpoint

    policy, _ = load_checkpoint(path, require_finite=True)
    return make_backend_from_policy(policy, name, device=device, cache_dir=cache_dir, threads=threads)
