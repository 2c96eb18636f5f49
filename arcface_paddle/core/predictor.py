"""Run exported models with Paddle Inference: the generic :class:`Predictor` every model task builds on.

CPU runs use oneDNN (~7× faster than eager here) in fp32 only — oneDNN bf16 gives wrong outputs on
this stack, so it is refused — or, with ``cpu_engine="openvino"``, OpenVINO's CPU plugin (inside the
paddlepaddle wheel) where it can convert the program (the detector's default: BlazeFace ~2× faster).
GPU, TensorRT and fp16 are used only when paddle is built with CUDA; otherwise asking for them is a clear
one-line error.
"""
from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from typing import Dict, List, Optional

import numpy as np

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.model_yaml import ModelConfig, load_model_config, verify_params

PRECISIONS = ("fp32", "fp16")
CPU_ENGINES = ("onednn", "openvino")   # what runs a CPU program: Paddle's oneDNN kernels, or OpenVINO (same wheel)
ONEDNN_CACHE_CAPACITY = 16   # distinct input shapes oneDNN keeps kernels for (varying batch sizes)


@functools.lru_cache(maxsize=None)
def openvino_cache_dir() -> str:
    """A private folder for OpenVINO's compiled graphs, removed when the process exits: without one, Paddle
    writes them into ``./__cache__`` of whatever folder the user runs from."""
    folder = tempfile.mkdtemp(prefix="arcface-paddle-openvino-")
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _check_device(use_gpu: bool, use_tensorrt: bool, precision: str) -> None:
    """GPU, TensorRT and fp16 need paddlepaddle-gpu, and the last two need ``use_gpu``: one-line refusals."""
    import paddle  # heavy (paddle): imported on first use

    if (use_gpu or use_tensorrt or precision != "fp32") and not paddle.is_compiled_with_cuda():
        wanted = "TensorRT" if use_tensorrt else ("fp16" if precision != "fp32" else "GPU")
        raise ToolkitError(f"{wanted} inference needs paddlepaddle-gpu; this paddle is the CPU build "
                           "(use the defaults: CPU, fp32)")
    if use_tensorrt and not use_gpu:
        raise ToolkitError("use_tensorrt needs use_gpu=True")
    if precision == "fp16" and not use_gpu:
        raise ToolkitError("fp16 inference is GPU only (CPU runs fp32)")


def read_input_shapes(program_path: str, fmt: str) -> Dict[str, List[int]]:
    """Declared shapes of a saved program's inputs (``-1`` = any), read from the file itself."""
    try:
        if fmt == "pir":
            with open(program_path, "r", encoding="utf-8") as handle:
                program = json.load(handle)
            shapes = {}
            for op in program["program"]["regions"][0]["blocks"][0]["ops"]:
                if op.get("#", "").endswith(".data"):
                    attrs = {attr["N"]: attr["AT"]["D"] for attr in op.get("A", [])}
                    shapes[attrs["name"]] = [int(v) for v in attrs["shape"]]
            return shapes
        from paddle.base.proto import framework_pb2  # heavy (paddle): imported on first use

        desc = framework_pb2.ProgramDesc()
        with open(program_path, "rb") as handle:
            desc.ParseFromString(handle.read())
        block = desc.blocks[0]
        feeds = [arg for op in block.ops if op.type == "feed" for out in op.outputs for arg in out.arguments]
        dims = {var.name: list(_tensor_desc(var.type).dims) for var in block.vars if var.name in feeds}
        return {name: [int(v) for v in dims[name]] for name in feeds}
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        raise ToolkitError(f"{program_path}: not a readable {fmt} program ({type(error).__name__}: {error})") from None
    except Exception as error:  # protobuf DecodeError and friends
        raise ToolkitError(f"{program_path}: not a readable {fmt} program ({type(error).__name__})") from None


def _tensor_desc(var_type):
    # paddle 3 names the field dense_tensor; paddle 2 programs call it lod_tensor
    holder = var_type.dense_tensor if var_type.HasField("dense_tensor") else var_type.lod_tensor
    return holder.tensor


def _spatial_dims(shape: List[int]) -> Optional[List[int]]:
    """[H, W] of an image input declared NCHW or NHWC with 3 channels; None when it is not one."""
    if len(shape) == 4 and shape[1] == 3:
        return shape[2:4]
    if len(shape) == 4 and shape[3] == 3:
        return shape[1:3]
    return None


def _check_program_matches_config(model_dir: str, config: ModelConfig) -> Dict[str, List[int]]:
    program_path = config.program_path(model_dir)
    shapes = read_input_shapes(program_path, config.format)
    if not shapes:
        raise ToolkitError(f"{program_path}: program declares no inputs")
    first = next(iter(shapes.values()))
    spatial = _spatial_dims(first)
    expected = [int(v) for v in config.input_size]
    if spatial is not None and all(v > 0 for v in spatial) and spatial != expected:
        raise ToolkitError(f"{program_path}: program input is {spatial[0]}×{spatial[1]} but model.yaml says "
                           f"input_size {expected[0]}×{expected[1]} (re-export, or fix model.yaml)")
    return shapes


def onednn_projection_rewrite(program_bytes: bytes) -> Optional[bytes]:
    """The legacy program with bias-less residual-branch convolutions typed ``fused_conv2d``; None if none.

    A block whose shortcut is itself a convolution (BlazeFace pads the shortcut's channels with a fixed
    1×1 conv) ends in ``add(conv_a(x) + bias, conv_b(y))``.  oneDNN's residual fusion pass folds such an
    add into one of the two convolutions only when both are the same op type, but the bias fusion has
    already made the first one ``fused_conv2d`` while the bias-less one stays ``conv2d`` — so the add
    (with its ReLU) runs as a separate op.  ``fused_conv2d`` without bias or activation is the same
    computation as ``conv2d``; typing it so lets the pass fuse the add (BlazeFace: 8 of short range's 11
    such adds and 4 of full range's 8 disappear; outputs bit-identical).  Only used for oneDNN runs.
    """
    from paddle.base.proto import framework_pb2  # heavy (paddle): imported on first use

    desc = framework_pb2.ProgramDesc()
    desc.ParseFromString(program_bytes)
    changed = False
    for block in desc.blocks:
        persistable = {var.name for var in block.vars if var.persistable}
        consumers: Dict[str, list] = {}
        for op in block.ops:
            for slot in op.inputs:
                for name in slot.arguments:
                    consumers.setdefault(name, []).append(op)
        for op in block.ops:
            if op.type != "conv2d":
                continue
            outputs = [name for slot in op.outputs if slot.parameter == "Output" for name in slot.arguments]
            users = consumers.get(outputs[0], []) if len(outputs) == 1 else []
            if len(users) != 1 or users[0].type != "elementwise_add":
                continue
            operands = [name for slot in users[0].inputs if slot.parameter in ("X", "Y") for name in slot.arguments]
            if len(operands) == 2 and not any(name in persistable for name in operands):
                op.type = "fused_conv2d"
                changed = True
    return desc.SerializeToString(deterministic=True) if changed else None


def _load_failure(error: Exception, program_path: str, params_path: str) -> str:
    """One line for paddle.inference's load error, naming the file at fault: parameters are read by the
    ``load_combine`` operator, so a truncated or damaged params file is blamed on itself, not the program."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if any("load_combine" in line or "model parameters" in line for line in lines):
        reason = lines[0].replace("(Unavailable) ", "") if lines else "unreadable"
        return f"{params_path}: paddle.inference could not load the weights ({reason[:200]})"
    return f"{program_path}: paddle.inference could not load the model ({lines[-1] if lines else type(error).__name__})"


class Predictor:
    """A Paddle Inference predictor for a model folder (program + params + ``model.yaml``).

    Not thread-safe: give each thread its own (``clone()`` shares the weights).
    """

    def __init__(self, model_dir: str, cpu_threads: int = 2, use_gpu: bool = False, use_tensorrt: bool = False,
                 precision: str = "fp32", enable_onednn: bool = True, ir_optim: bool = True,
                 memory_optim: bool = True, gpu_id: int = 0, gpu_memory_mb: int = 512, trt_max_batch: int = 32,
                 cpu_engine: str = "onednn"):
        # KMP_BLOCKTIME (how long Paddle's OpenMP workers spin after each op) is left at its default: 0 saves
        # CPU time but makes every small op wake its threads, 2-3x the latency of one photo (docs/throughput.md).
        self.model_dir = model_dir
        self.config = load_model_config(model_dir)
        verify_params(model_dir, self.config)      # a corrupt params file would run and answer wrongly
        self.input_shapes = _check_program_matches_config(model_dir, self.config)
        if precision not in PRECISIONS:
            raise ToolkitError(f"precision must be one of {PRECISIONS}, got {precision!r} "
                               "(bf16 is refused: oneDNN bf16 gives wrong outputs on this stack)")
        if cpu_threads < 1:
            raise ToolkitError(f"cpu_threads must be >= 1, got {cpu_threads}")
        if cpu_engine not in CPU_ENGINES:
            raise ToolkitError(f"cpu_engine must be one of {CPU_ENGINES}, got {cpu_engine!r}")
        _check_device(use_gpu, use_tensorrt, precision)     # before either engine is built: neither may drop them
        openvino = self._create_openvino(cpu_threads) if cpu_engine == "openvino" and not use_gpu else None
        self.engine = ("openvino" if openvino is not None else "gpu" if use_gpu
                       else "onednn" if enable_onednn else "paddle")
        self._predictor = openvino or self._create(cpu_threads, use_gpu, use_tensorrt, precision, enable_onednn,
                                                   ir_optim, memory_optim, gpu_id, gpu_memory_mb, trt_max_batch)
        self.input_names = self._predictor.get_input_names()
        self.output_names = self._predictor.get_output_names()
        self._bind_handles()
        self._family = [self._predictor]      # every native predictor sharing these weights (see clone)
        self.device = "gpu" if use_gpu else "cpu"

    def _bind_handles(self) -> None:
        # fetched once: looking handles up by name on every call costs a few µs each at batch 1
        self._input_handle = self._predictor.get_input_handle(self.input_names[0])
        self._output_handles = [self._predictor.get_output_handle(name) for name in self.output_names]

    def _create(self, cpu_threads, use_gpu, use_tensorrt, precision, enable_onednn, ir_optim, memory_optim,
                gpu_id, gpu_memory_mb, trt_max_batch):
        from paddle import inference  # heavy (paddle): imported on first use

        model_dir, config = self.model_dir, self.config
        program_path, params_path = config.program_path(model_dir), config.params_path(model_dir)
        rewritten = None
        if enable_onednn and not use_gpu and config.format == "legacy":
            try:
                with open(program_path, "rb") as handle:
                    rewritten = onednn_projection_rewrite(handle.read())
            except Exception:  # unreadable program: let paddle.inference report it below
                rewritten = None
        params = None
        if rewritten is not None:
            try:
                with open(params_path, "rb") as handle:
                    params = handle.read()
            except OSError:  # missing params: paddle.inference's own load error names the problem
                params = None
        if params is not None:
            native = inference.Config()
            native.set_model_buffer(rewritten, len(rewritten), params, len(params))
        else:
            native = inference.Config(program_path, params_path)
        native.disable_glog_info()
        native.switch_ir_optim(ir_optim)
        if memory_optim and config.format == "legacy":
            # paddle 3.3.1: enable_memory_optim() on a PIR program fails at load ("pass_result_info" hint)
            native.enable_memory_optim()
        if use_gpu:
            mode = inference.PrecisionType.Half if precision == "fp16" else inference.PrecisionType.Float32
            native.enable_use_gpu(gpu_memory_mb, gpu_id, mode)
            if use_tensorrt:
                self._enable_tensorrt(native, mode, trt_max_batch)
        else:
            native.disable_gpu()
            native.set_cpu_math_library_num_threads(cpu_threads)
            if enable_onednn:
                native.enable_mkldnn()
                native.set_mkldnn_cache_capacity(ONEDNN_CACHE_CAPACITY)
        try:
            return inference.create_predictor(native)
        except Exception as error:
            raise ToolkitError(_load_failure(error, program_path, params_path)) from None

    def _create_openvino(self, cpu_threads):
        """The program run by OpenVINO's CPU plugin (shipped inside the paddlepaddle wheel), or None when
        OpenVINO cannot convert it (e.g. the SFace program): the caller then uses oneDNN.  On BlazeFace it
        is ~2x faster than oneDNN per image at every batch size, outputs within 3e-7 (docs/throughput.md)."""
        from paddle import inference  # heavy (paddle): imported on first use

        native = inference.Config(self.config.program_path(self.model_dir), self.config.params_path(self.model_dir))
        native.disable_glog_info()
        native.disable_gpu()
        native.set_cpu_math_library_num_threads(cpu_threads)
        native.set_optim_cache_dir(openvino_cache_dir())
        native.enable_openvino_engine(inference.PrecisionType.Float32)
        try:
            return inference.create_predictor(native)
        except Exception:  # not convertible (unsupported op): oneDNN runs every program
            return None

    def _enable_tensorrt(self, native, mode, max_batch):
        native.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=max_batch, min_subgraph_size=3,
                                      precision_mode=mode, use_static=False, use_calib_mode=False)
        name, shape = next(iter(self.input_shapes.items()))
        fixed = [v if v > 0 else 1 for v in shape]
        largest = [max_batch if i == 0 and v <= 0 else (v if v > 0 else 1) for i, v in enumerate(shape)]
        native.set_trt_dynamic_shape_info({name: fixed}, {name: largest}, {name: largest})

    def clone(self) -> "Predictor":
        twin = object.__new__(Predictor)
        twin.__dict__.update(self.__dict__)
        twin._predictor = self._predictor.clone()
        # Paddle 3.3.1: destroying a clone frees the weights it shares with the others ("Tensor holds no
        # memory" on the original's next run), so every native predictor of a family lives as long as any
        # member does.
        self._family.append(twin._predictor)
        twin._bind_handles()
        return twin

    def _check_batch(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch)
        declared = next(iter(self.input_shapes.values()))
        if batch.ndim != len(declared) or any(d > 0 and d != s for d, s in zip(declared[1:], batch.shape[1:])):
            want = "×".join("N" if i == 0 else (str(d) if d > 0 else "?") for i, d in enumerate(declared))
            raise ToolkitError(f"{self.model_dir}: input batch has shape {'×'.join(map(str, batch.shape))}, "
                               f"the model takes {want}")
        if batch.shape[0] == 0:
            raise ToolkitError(f"{self.model_dir}: empty input batch")
        return np.ascontiguousarray(batch, dtype=np.float32)

    def run_outputs(self, batch: np.ndarray) -> List[np.ndarray]:
        """Every output of the program for one input batch, as float32 arrays."""
        batch = self._check_batch(batch)
        self._input_handle.reshape(list(batch.shape))
        self._input_handle.copy_from_cpu(batch)
        self._predictor.run()
        outputs = [handle.copy_to_cpu().astype(np.float32, copy=False) for handle in self._output_handles]
        if not all(np.isfinite(output.sum()) for output in outputs):      # never pass NaN on as an answer
            raise ToolkitError(f"{self.config.params_path(self.model_dir)}: the model answered NaN or infinite "
                               f"values (damaged weights, or an input it cannot handle); refusing its output")
        return outputs

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The first output for one input batch (N×C×H×W float32)."""
        return self.run_outputs(batch)[0]
