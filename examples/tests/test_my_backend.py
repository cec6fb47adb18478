"""A backend's pt2e test: its quantizer tags conv + relu, and the tag must reach every
quantize/dequantize node convert inserts for them, on every torch of the matrix."""

import torch

from compat.shims import export as capture
from compat.shims import routes, snapshot
from compat.shims.pt2e import api


class ConvRelu(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.relu(self.conv(x))


def test_conv_relu_tag_reaches_its_quantize_nodes():
    pt2e = api()
    config = pt2e.get_symmetric_quantization_config()

    class MyBackend(pt2e.Quantizer):
        def annotate(self, gm):
            for partition in pt2e.OP_TO_ANNOTATOR["conv_relu"](gm, config):
                for node in partition:
                    node.meta["quantization_tag"] = "my_backend_conv_relu"
            return gm

        def validate(self, model):
            pass

    routes.record("my_backend.quantizer", "OP_TO_ANNOTATOR['conv_relu']")
    inputs = (torch.randn(1, 3, 8, 8),)
    prepared = pt2e.prepare_pt2e(capture.capture(ConvRelu().eval(), inputs), MyBackend())
    prepared(*inputs)
    converted = pt2e.convert_pt2e(prepared, fold_quantize=True)
    nodes = snapshot.record("converted", converted)
    quantized_output = [
        n for n in nodes if n["op"] == "quantize_per_tensor" and n["after"] in ("relu", "relu_")
    ]
    assert quantized_output, nodes
    assert all(n["tag"] == "my_backend_conv_relu" for n in quantized_output)
