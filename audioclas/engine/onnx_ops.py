"""A small helper to write an ONNX graph node by node: ``Graph.op`` appends a node and returns its output's name.

The backbone (``onnx_graph``) and the front end (``onnx_frontend``) are written with it; a caller that wants more
(a classifier head after ``embedding``) keeps adding nodes to the same ``Graph`` before ``Graph.model``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

OPSET = 17  # the first with STFT; onnxruntime 1.14+ and most edge runtimes load it
IR_VERSION = 8  # the IR that opset 17 shipped with, so that older runtimes accept the file


class Graph:
    """Nodes and initializers of one graph; names are unique because every output gets a counter suffix."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self._count = 0

    def input(self, name: str, shape: list[int | str]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape))
        return name

    def const(self, name: str, value: np.ndarray | float | list[int]) -> str:
        """An initializer: a float is a float32 scalar, a list of ints an int64 vector."""
        if isinstance(value, float):
            array = np.array(value, np.float32)
        elif isinstance(value, list):
            array = np.array(value, np.int64)
        else:
            array = value
        unique = self._unique(name)
        self.initializers.append(numpy_helper.from_array(array, unique))
        return unique

    def op(self, op_type: str, *inputs: str, name: str | None = None, **attributes: Any) -> str:
        """Append one node with a single output and return that output's name."""
        output = self._unique(name or op_type)
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=output, **attributes))
        return output

    def rename(self, value: str, name: str) -> str:
        """Give ``value`` a fixed name (an output of the graph): an Identity node."""
        self.nodes.append(helper.make_node("Identity", [value], [name], name=name))
        return name

    def model(self, outputs: dict[str, list[int | str]], metadata: dict[str, str] | None = None) -> onnx.ModelProto:
        """The finished model; ``outputs`` maps value names (see ``rename``) to their shapes."""
        graph = helper.make_graph(
            self.nodes,
            "audioclas",
            self.inputs,
            [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape) for name, shape in outputs.items()],
            self.initializers,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION, producer_name="audioclas"
        )
        helper.set_model_props(model, metadata or {})
        return model

    def _unique(self, name: str) -> str:
        self._count += 1
        return f"{name}:{self._count}"
