"""ONNX → Paddle import by graph structure, checked against onnxruntime on real ONNX graphs built here.

The graphs are written with ``onnx.helper`` from a tiny random MobileNetV1 in the same form as OpenCV's SFace
file (MXNet export: Sub/Mul input scaling, Conv → BatchNormalization → PRelu, BN → Dropout → Flatten → Gemm
→ BN) and in the BN-folded form other exporters write.  onnxruntime runs them; our imported eager network
must give the same numbers.  Mismatched graphs must be refused with a one-line ToolkitError.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from arcface_paddle.backbones import get_model  # noqa: E402
from arcface_paddle.core.errors import ToolkitError  # noqa: E402
from arcface_paddle.importers import import_onnx_recognizer, save_imported_checkpoint  # noqa: E402

TINY = {"embedding_size": 16, "width_mult": 0.125, "input_size": 32}
GRAPH_BN_EPSILON = 1e-5     # differs from our layers' 1e-3 / 2e-5 on purpose: the importer must compensate


def randomized_tiny_network(seed: int = 0):
    paddle.seed(seed)
    layer = get_model("MobileNetV1", **TINY)
    rng = np.random.default_rng(seed)
    for name, tensor in layer.state_dict().items():
        if name.endswith("_variance"):
            tensor.set_value(rng.uniform(0.5, 1.5, tensor.shape).astype(np.float32))
        elif name.endswith("_mean") or name.endswith("bn.bias") or name.endswith("_bn.bias"):
            tensor.set_value(rng.normal(0, 0.1, tensor.shape).astype(np.float32))
        elif name.endswith("bn.weight") or name.endswith("_bn.weight") or name.startswith("features.weight"):
            tensor.set_value(rng.uniform(0.5, 1.5, tensor.shape).astype(np.float32))
        elif "prelu" in name:
            tensor.set_value(rng.uniform(0.0, 0.5, tensor.shape).astype(np.float32))
    layer.eval()
    return layer


class GraphWriter:
    """Writes a MobileNetV1 as an ONNX node chain (optionally BN-folded) that tests may then tamper with."""

    def __init__(self):
        self.nodes, self.initializers, self.current, self.count = [], [], "data", 0

    def const(self, array) -> str:
        name = f"w{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    def add(self, op_type, *constants, **attrs) -> str:
        self.count += 1
        output = f"{op_type.lower()}{self.count}"
        inputs = [self.current] + [self.const(value) for value in constants]
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        self.current = output
        return output

    def bn(self, layer):
        gamma, beta = layer.weight.numpy(), layer.bias.numpy()
        mean, var = layer._mean.numpy(), layer._variance.numpy() + layer._epsilon - GRAPH_BN_EPSILON
        self.add("BatchNormalization", gamma, beta, mean, var, epsilon=GRAPH_BN_EPSILON)

    def block(self, block, fold_bn: bool):
        conv, bn = block.conv, block.bn
        weight = conv.weight.numpy()
        attrs = dict(kernel_shape=list(conv._kernel_size), strides=list(conv._stride), group=conv._groups,
                     pads=[conv._updated_padding[0]] * 4, dilations=[1, 1])
        if fold_bn:
            factor = bn.weight.numpy() / np.sqrt(bn._variance.numpy() + bn._epsilon)
            bias = bn.bias.numpy() - bn._mean.numpy() * factor
            self.add("Conv", weight * factor[:, None, None, None], bias, **attrs)
        else:
            self.add("Conv", weight, **attrs)
            self.bn(bn)
        self.add("PRelu", block.prelu._weight.numpy().reshape(-1, 1, 1))

    def network(self, layer, fold_bn: bool = False):
        self.add("Sub", np.array([127.5]))
        self.add("Mul", np.array([0.0078125]))
        self.block(layer.stem, fold_bn)
        for pair in layer.body:
            self.block(pair.depthwise, fold_bn)
            self.block(pair.pointwise, fold_bn)
        self.bn(layer.head_bn)
        self.add("Dropout", ratio=0.4)
        self.add("Flatten", axis=1)
        weight, bias = layer.fc.weight.numpy(), layer.fc.bias.numpy()
        if fold_bn:  # fold the feature BN into the Gemm, as optimising exporters do
            features = layer.features
            factor = features.weight.numpy() / np.sqrt(features._variance.numpy() + features._epsilon)
            weight = weight * factor[None, :]
            bias = (bias - features._mean.numpy()) * factor + features.bias.numpy()
            self.add("Gemm", weight.T, bias, transB=1)
        else:
            self.add("Gemm", weight.T, bias, transB=1)
            self.bn(layer.features)
        return self

    def save(self, path, input_size: int = TINY["input_size"]) -> str:
        graph = helper.make_graph(
            self.nodes, "tiny_sface",
            [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, input_size, input_size])],
            [helper.make_tensor_value_info(self.current, TensorProto.FLOAT, ["N", None])],
            initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
        model.ir_version = 6
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
        return str(path)


@pytest.fixture(scope="module")
def tiny():
    paddle.set_device("cpu")
    return randomized_tiny_network()


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(1).integers(0, 256, (3, 3, 32, 32)).astype(np.float32)


def run_onnxruntime(path: str, pixels: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return session.run(None, {"data": pixels})[0]


def run_eager(imported, pixels: np.ndarray) -> np.ndarray:
    with paddle.no_grad():
        return imported.layer(paddle.to_tensor((pixels - imported.mean) / imported.std)).numpy()


@pytest.mark.parametrize("fold_bn", [False, True], ids=["bn-nodes", "bn-folded"])
def test_import_equals_onnxruntime(tiny, pixels, tmp_path, fold_bn):
    path = GraphWriter().network(tiny, fold_bn=fold_bn).save(tmp_path / "tiny.onnx")
    imported = import_onnx_recognizer(path, network="MobileNetV1")
    assert imported.backbone_kwargs == {"embedding_size": 16, "input_size": 32, "width_mult": 0.125}
    assert (imported.mean, imported.std, imported.color_order) == (127.5, 128.0, "RGB")
    reference = run_onnxruntime(path, pixels)
    ours = run_eager(imported, pixels)
    assert np.abs(reference).max() > 0.1  # a real signal, not all zeros
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)
    # The weights came from the graph, not from the network we wrote it from by accident of seeding.
    assert imported.layer is not tiny
    assert imported.source["licence"].startswith("unknown") and len(imported.source["sha256"]) == 64


def test_checkpoint_loads_back(tiny, pixels, tmp_path):
    from arcface_paddle.backbones.loading import load_backbone

    path = GraphWriter().network(tiny).save(tmp_path / "tiny.onnx")
    imported = import_onnx_recognizer(path)
    folder = save_imported_checkpoint(imported, str(tmp_path / "ckpt"))
    layer, meta = load_backbone(folder)
    assert meta["network"] == "MobileNetV1" and meta["embedding_size"] == 16
    assert meta["imported_from"]["sha256"] == imported.source["sha256"]
    with paddle.no_grad():
        again = layer(paddle.to_tensor((pixels - 127.5) / 128.0)).numpy()
    np.testing.assert_allclose(again, run_eager(imported, pixels), rtol=1e-6, atol=1e-6)
    # train.py --pretrained FOLDER starts fine-tuning from exactly these weights.
    from arcface_paddle.training.resume import load_pretrained_backbone

    fresh = get_model("MobileNetV1", **TINY)
    load_pretrained_backbone(fresh, folder, network="MobileNetV1", log=lambda message: None)
    fresh.eval()
    with paddle.no_grad():
        tuned_start = fresh(paddle.to_tensor((pixels - 127.5) / 128.0)).numpy()
    np.testing.assert_allclose(tuned_start, again, rtol=1e-6, atol=1e-6)


def _tamper_stride(writer):
    conv = next(node for node in writer.nodes if node.op_type == "Conv"
                and helper.get_attribute_value(next(a for a in node.attribute if a.name == "strides")) == [2, 2])
    for attribute in conv.attribute:
        if attribute.name == "strides":
            attribute.ints[:] = [1, 1]


def _tamper_residual(writer):
    # out = prelu_k + prelu_{k-3}: a residual connection the network does not have
    prelus = [node.output[0] for node in writer.nodes if node.op_type == "PRelu"]
    index = next(i for i, node in enumerate(writer.nodes) if node.output[0] == prelus[2])
    add = helper.make_node("Add", [prelus[2], prelus[1]], ["residual"], name="residual")
    writer.nodes[index + 1].input[0] = "residual"
    writer.nodes.insert(index + 1, add)


def _tamper_prelu_shape(writer):
    prelu = next(node for node in writer.nodes if node.op_type == "PRelu")
    replacement = numpy_helper.from_array(np.full((3, 1, 1), 0.25, np.float32), prelu.input[1])
    writer.initializers[[i.name for i in writer.initializers].index(prelu.input[1])] = replacement


def _tamper_drop_pair(writer):
    # remove the last depthwise/pointwise pair (6 nodes) before the head BN
    head = max(i for i, node in enumerate(writer.nodes) if node.op_type == "PRelu")
    removed = writer.nodes[head - 5:head + 1]
    writer.nodes[head + 1].input[0] = removed[0].input[0]
    del writer.nodes[head - 5:head + 1]


@pytest.mark.parametrize("tamper, message", [
    (_tamper_stride, "strides [1, 1] where the layer has [2, 2]"),
    (_tamper_residual, "not a plain chain"),
    (_tamper_prelu_shape, "slope shape (3, 1, 1)"),
    (_tamper_drop_pair, "does not match MobileNetV1"),
], ids=["stride", "residual", "prelu-shape", "missing-pair"])
def test_mismatched_graph_is_refused(tiny, tmp_path, tamper, message):
    writer = GraphWriter().network(tiny)
    tamper(writer)
    path = writer.save(tmp_path / "bad.onnx")
    with pytest.raises(ToolkitError) as caught:
        import_onnx_recognizer(path, network="MobileNetV1")
    text = str(caught.value)
    assert message in text and path in text and "\n" not in text


def test_wrong_network_and_bad_files_are_refused(tiny, tmp_path):
    path = GraphWriter().network(tiny).save(tmp_path / "tiny.onnx")
    with pytest.raises(ToolkitError, match="cannot be imported from ONNX"):
        import_onnx_recognizer(path, network="MobileFaceNet_128")
    with pytest.raises(ToolkitError, match="unknown backbone"):
        import_onnx_recognizer(path, network="NoSuchNet")
    with pytest.raises(ToolkitError, match="tiny.onnx: network 'BlazeFace_full_range' .* from MediaPipe's .tflite"):
        import_onnx_recognizer(path, network="BlazeFace_full_range")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not an onnx file" * 10)
    with pytest.raises(ToolkitError, match="not a readable ONNX model"):
        import_onnx_recognizer(str(junk))
    with pytest.raises(ToolkitError, match="not found"):
        import_onnx_recognizer(str(tmp_path / "missing.onnx"))

    from arcface_paddle.cli.import_pretrained import import_pretrained

    detector = tmp_path / "detector.tflite"
    detector.write_bytes(b"TFL3")
    with pytest.raises(ToolkitError, match="imports into BlazeFace_short_range or BlazeFace_full_range"):
        import_pretrained(source=str(detector), network="MobileNetV1", output=str(tmp_path / "out"))
    with pytest.raises(ToolkitError, match="unsupported weights format .pb"):
        (tmp_path / "model.pb").write_bytes(b"x")
        import_pretrained(source=str(tmp_path / "model.pb"), network="MobileNetV1", output=str(tmp_path / "out"))
    with pytest.raises(ToolkitError, match="must be different folders"):
        import_pretrained(source=path, network="MobileNetV1", output=str(tmp_path / "same"),
                          checkpoint=str(tmp_path / "same"))
    assert not (tmp_path / "out").exists() and not (tmp_path / "same").exists()


SFACE_ONNX = os.environ.get("ARCFACE_SFACE_ONNX")


@pytest.mark.skipif(not SFACE_ONNX, reason="set ARCFACE_SFACE_ONNX to the original face_recognition_sface_2021dec.onnx")
def test_full_sface_import_equals_onnxruntime(repo_root):
    """Runs only where the original file is available (it is not shipped in the repo)."""
    reference = np.load(repo_root / "tests" / "data" / "sface_reference.npz")
    imported = import_onnx_recognizer(SFACE_ONNX, network="MobileNetV1")
    assert imported.source["licence"] == "Apache-2.0" and imported.color_order == "RGB"
    pixels = reference["crops"].transpose(0, 3, 1, 2).astype(np.float32)
    ours = run_eager(imported, pixels)
    theirs = np.concatenate([run_onnxruntime(SFACE_ONNX, pixels[i:i + 1]) for i in range(len(pixels))])
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() >= 0.9999
    np.testing.assert_allclose(theirs, reference["onnxruntime"], rtol=1e-4, atol=1e-4)


def _run_cli(repo_root, *args):
    return subprocess.run([sys.executable, str(repo_root / "tools" / "import_pretrained.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=str(repo_root))


def test_cli_imports_exports_and_refuses(tiny, pixels, tmp_path, repo_root):
    from arcface_paddle.core.model_yaml import load_model_config, params_fingerprint
    from arcface_paddle.inference.recognizer import RecognitionPredictor

    path = GraphWriter().network(tiny).save(tmp_path / "tiny.onnx")
    result = _run_cli(repo_root, "--source", path, "--network", "MobileNetV1", "--output", tmp_path / "model",
                      "--checkpoint", tmp_path / "ckpt", "--fuse-head")
    assert result.returncode == 0, result.stderr
    config = load_model_config(str(tmp_path / "model"))
    assert (config.color_order, config.mean, config.std) == ("RGB", [127.5] * 3, [128.0] * 3)
    assert config.source["sha256"] == import_onnx_recognizer(path).source["sha256"]
    assert config.model_id == params_fingerprint(str(tmp_path / "model" / "inference.pdiparams"))
    assert (tmp_path / "ckpt" / "backbone.pdparams").is_file()
    # The exported predictor (oneDNN) applies model.yaml's preprocessing and equals onnxruntime.
    images = pixels.transpose(0, 2, 3, 1).astype(np.uint8)
    embedded = RecognitionPredictor(str(tmp_path / "model"), cpu_threads=1).embed(images)
    np.testing.assert_allclose(embedded, run_onnxruntime(path, pixels), rtol=1e-4, atol=1e-4)
    # --fuse-head exported the folded head; the checkpoint keeps the trainable form.
    from arcface_paddle.importers import load_layer_from_inference_model

    rebuilt, _ = load_layer_from_inference_model(str(tmp_path / "model"))
    assert rebuilt.fused_head and not hasattr(rebuilt, "head_bn")
    with paddle.no_grad():
        np.testing.assert_allclose(rebuilt(paddle.to_tensor((pixels - 127.5) / 128.0)).numpy(), embedded,
                                   rtol=1e-4, atol=1e-4)

    writer = GraphWriter().network(tiny)
    _tamper_stride(writer)
    bad = writer.save(tmp_path / "bad.onnx")
    result = _run_cli(repo_root, "--source", bad, "--network", "MobileNetV1", "--output", tmp_path / "bad_model")
    assert result.returncode == 2
    last_line = result.stderr.strip().splitlines()[-1]   # paddle may print import warnings before it
    assert last_line.startswith("error: ") and "Traceback" not in result.stderr
    assert "strides" in last_line and bad in last_line and not (tmp_path / "bad_model").exists()
