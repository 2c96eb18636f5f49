"""Output-preserving rewrites of a traced BlazeFace legacy program (the export parity tests check them)."""
from __future__ import annotations

from paddle.base.proto import framework_pb2

from arcface_paddle.core.program_export import rewrite_legacy_program


def tidy_legacy_program(program_path: str) -> None:
    """Three rewrites of the saved legacy program, all output-preserving (the parity tests check):

    * drop the Python call stacks (absolute source paths) stored on every op, so the program is the
      same file wherever the toolkit is installed;
    * fold "reshape2(bias → 1×C×1×1) + elementwise_add(axis=-1)" back into the classic
      "elementwise_add(Y=bias, axis=1)".  Paddle 3.3's tracer emits the first form, which oneDNN's
      conv+bias fusion refuses ("Check the Attr(axis) ... failed"), leaving every convolution, bias,
      ReLU and residual add as separate ops; with the classic form they fuse into one conv each;
    * replace the traced sigmoid stand-in "softmax(stack([x, zeros_like(x)]))[..., 0]" (four ops:
      the legacy tracer has no sigmoid) by one ``sigmoid`` op — same scores to float rounding
      (≤ 3e-8), and every op saved is ~50 µs per call in Paddle Inference at batch 1.
    """
    rewrite_legacy_program(program_path, _fold_bias_reshapes, _fold_softmax_sigmoid)


def _argument(op, parameter: str, outputs: bool = False) -> list:
    for slot in (op.outputs if outputs else op.inputs):
        if slot.parameter == parameter:
            return slot.arguments
    return []


def _fold_bias_reshapes(block) -> None:
    persistable = {var.name for var in block.vars if var.persistable}
    consumers = {}
    for op in block.ops:
        for slot in op.inputs:
            for name in slot.arguments:
                consumers.setdefault(name, []).append(op)
    folded, dropped_vars = [], set()
    for op in block.ops:
        if op.type != "reshape2":
            continue
        source = list(_argument(op, "X"))
        out = list(_argument(op, "Out", outputs=True))
        users = consumers.get(out[0], []) if out else []
        if (len(source) != 1 or source[0] not in persistable or not users
                or any(user.type != "elementwise_add" or list(_argument(user, "Y")) != out for user in users)):
            continue
        for user in users:
            _argument(user, "Y")[0] = source[0]
            for attr in user.attrs:
                if attr.name == "axis":
                    attr.i = 1
        folded.append(op)
        dropped_vars.update(out + list(_argument(op, "XShape", outputs=True)))
    for op in folded:
        block.ops.remove(op)
    for var in [var for var in block.vars if var.name in dropped_vars]:
        block.vars.remove(var)


def _attr(op, name):
    for attr in op.attrs:
        if attr.name == name:
            return attr
    return None


def _fold_softmax_sigmoid(block) -> None:
    """``slice(softmax(stack([x, fill_any_like(x, 0)], axis=-1)), last axis, [0:1], squeezed)`` → ``sigmoid(x)``."""

    ops = list(block.ops)
    producer = {name: op for op in ops for slot in op.outputs for name in slot.arguments}
    consumers = {}
    for op in ops:
        for slot in op.inputs:
            for name in slot.arguments:
                consumers.setdefault(name, []).append(op)
    ranks = {}
    for var in block.vars:
        if var.type.HasField("dense_tensor"):
            ranks[var.name] = len(var.type.dense_tensor.tensor.dims)
    last_axis = lambda op, name: _attr(op, name) is not None and _attr(op, name).i == -1  # noqa: E731
    for softmax in [op for op in ops if op.type == "softmax"]:
        stack = producer.get(next(iter(_argument(softmax, "X")), None))
        if (stack is None or stack.type != "stack" or not last_axis(stack, "axis") or not last_axis(softmax, "axis")
                or len(_argument(stack, "X")) != 2):
            continue
        source, zeros_name = list(_argument(stack, "X"))
        zeros = producer.get(zeros_name)
        value = _attr(zeros, "value") if zeros is not None else None
        if (zeros is None or zeros.type != "fill_any_like" or list(_argument(zeros, "X")) != [source]
                or (value is not None and value.f != 0.0)):
            continue
        stacked, probs = _argument(stack, "Y", outputs=True)[0], _argument(softmax, "Out", outputs=True)[0]
        users = consumers.get(probs, [])
        if (len(users) != 1 or users[0].type != "slice" or len(consumers.get(stacked, [])) != 1
                or len(consumers.get(zeros_name, [])) != 1):
            continue
        take = users[0]
        slicing = {name: list(_attr(take, name).ints) if _attr(take, name) is not None else None
                   for name in ("axes", "starts", "ends", "decrease_axis")}
        if (stacked not in ranks or slicing["axes"] != [ranks[stacked] - 1] or slicing["starts"] != [0]
                or slicing["ends"] != [1] or slicing["decrease_axis"] != slicing["axes"]):
            continue
        sigmoid = framework_pb2.OpDesc()
        sigmoid.type = "sigmoid"
        sigmoid.inputs.add(parameter="X", arguments=[source])
        sigmoid.outputs.add(parameter="Out", arguments=list(_argument(take, "Out", outputs=True)))
        position = list(block.ops).index(zeros)
        for op in (zeros, stack, softmax, take):
            block.ops.remove(op)
        block.ops.insert(position, sigmoid)
        dropped = {zeros_name, stacked, probs}
        for var in [var for var in block.vars if var.name in dropped]:
            block.vars.remove(var)
