"""PyTorch reference for fedgate's GRU and LSTM gradients, one configuration at a time.

Usage: /usr/bin/python3 rnn_configs.py OUT_DIR  (Debian python3-torch 1.13 and python3-onnx)

For every configuration (GRU/LSTM x 1/2 layers x uni-/bidirectional x batch_first or not) the script
exports `rnn(x)[0]` with torch.onnx.export (opset 17, fixed batch, constant folding on: W, R and B are
initializers in ONNX's gate order) and records, for one fixed x and a fixed output weighting S, PyTorch's
output y and the gradients of L = sum(y * S) with respect to x and to every W, R and B initializer,
converted from PyTorch's parameter layout to ONNX's:
  LSTM: torch packs gates i, f, g, o; ONNX i, o, f, c   -> ONNX block k = torch block [0, 3, 1, 2][k]
  GRU:  torch packs gates r, z, n;    ONNX z, r, h      -> ONNX block k = torch block [1, 0, 2][k]
  W[d] = weight_ih, R[d] = weight_hh, B[d] = [bias_ih, bias_hh], d = 1 for the '_reverse' parameters.
The script asserts that the exported initializers equal the converted weights, so the mapping it uses for
the gradients is the one the exporter used.

OUT_DIR/manifest.json: {format: 1, configs: [{name, kind, layers, bidirectional, batchFirst, model,
x: {shape, file}, weighting: {shape, file}, y: {shape, file}, gradX: file,
parameters: [{name, shape, gradient}]}]}; *.bin are little-endian float32, row-major.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnx.numpy_helper
import torch

SEQ, BATCH, FEATURES, HIDDEN = 5, 3, 4, 6
GATE_ORDER = {'LSTM': [0, 3, 1, 2], 'GRU': [1, 0, 2]}


class Wrapped(torch.nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)[0]


def reorder(kind, tensor):
    blocks = torch.chunk(tensor, len(GATE_ORDER[kind]), dim=0)
    return torch.cat([blocks[i] for i in GATE_ORDER[kind]], dim=0)


def write(out_dir, name, array):
    np.ascontiguousarray(array, dtype='<f4').tofile(os.path.join(out_dir, name))
    return name


def one_config(out_dir, kind, layers, bidirectional, batch_first):
    name = f'{kind}-l{layers}-{"bi" if bidirectional else "uni"}-{"bf" if batch_first else "tm"}'
    rnn = getattr(torch.nn, kind)(FEATURES, HIDDEN, num_layers=layers, bidirectional=bidirectional,
                                  batch_first=batch_first)
    model = Wrapped(rnn)
    x_shape = (BATCH, SEQ, FEATURES) if batch_first else (SEQ, BATCH, FEATURES)
    x = torch.randn(*x_shape)
    model_file = f'{name}.onnx'
    torch.onnx.export(model, (x,), os.path.join(out_dir, model_file), opset_version=17, input_names=['x'],
                      output_names=['y'])
    graph = onnx.load(os.path.join(out_dir, model_file)).graph
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    rnn_nodes = [node for node in graph.node if node.op_type == kind]
    assert len(rnn_nodes) == layers, f'{name}: {len(rnn_nodes)} {kind} nodes for {layers} layers'

    # Reference in float64 from the same weights.
    reference = Wrapped(getattr(torch.nn, kind)(FEATURES, HIDDEN, num_layers=layers, bidirectional=bidirectional,
                                                batch_first=batch_first)).double()
    reference.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    x64 = x.double().requires_grad_(True)
    y = reference(x64)
    weighting = torch.randn(*y.shape, dtype=torch.float64)
    (y * weighting).sum().backward()
    params = dict(reference.rnn.named_parameters())

    parameters = []
    for layer, node in enumerate(rnn_nodes):
        suffixes = ['', '_reverse'] if bidirectional else ['']
        packed = {
            node.input[1]: [reorder(kind, params[f'weight_ih_l{layer}{s}']) for s in suffixes],
            node.input[2]: [reorder(kind, params[f'weight_hh_l{layer}{s}']) for s in suffixes],
            node.input[3]: [torch.cat([reorder(kind, params[f'bias_ih_l{layer}{s}']),
                                       reorder(kind, params[f'bias_hh_l{layer}{s}'])]) for s in suffixes],
        }
        for onnx_name, per_direction in packed.items():
            value = torch.stack([p.detach() for p in per_direction]).numpy()
            exported = initializers[onnx_name]
            assert exported.shape == value.shape and np.allclose(exported, value, atol=1e-6), \
                f'{name}: initializer {onnx_name} is not the converted torch weight'
            grad = torch.stack(gradients_of(kind, params, layer, suffixes, onnx_name, node)).numpy()
            parameters.append({'name': onnx_name, 'shape': list(value.shape),
                               'gradient': write(out_dir, f'{name}.grad.{len(parameters)}.bin', grad)})
    return {
        'name': name, 'kind': kind, 'layers': layers, 'bidirectional': bidirectional, 'batchFirst': batch_first,
        'model': model_file,
        'x': {'shape': list(x.shape), 'file': write(out_dir, f'{name}.x.bin', x.numpy())},
        'weighting': {'shape': list(weighting.shape), 'file': write(out_dir, f'{name}.s.bin', weighting.numpy())},
        'y': {'shape': list(y.shape), 'file': write(out_dir, f'{name}.y.bin', y.detach().numpy())},
        'gradX': write(out_dir, f'{name}.gx.bin', x64.grad.numpy()),
        'parameters': parameters,
    }


def gradients_of(kind, params, layer, suffixes, onnx_name, node):
    """The gradient of one ONNX W, R or B initializer, per direction, in ONNX's layout."""
    role = list(node.input).index(onnx_name)
    out = []
    for s in suffixes:
        if role == 1:
            out.append(reorder(kind, params[f'weight_ih_l{layer}{s}'].grad))
        elif role == 2:
            out.append(reorder(kind, params[f'weight_hh_l{layer}{s}'].grad))
        else:
            out.append(torch.cat([reorder(kind, params[f'bias_ih_l{layer}{s}'].grad),
                                  reorder(kind, params[f'bias_hh_l{layer}{s}'].grad)]))
    return out


def main(argv):
    if len(argv) != 1:
        sys.stderr.write('usage: rnn_configs.py OUT_DIR\n')
        return 2
    out_dir = argv[0]
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    configs = [one_config(out_dir, kind, layers, bidirectional, batch_first)
               for kind in ('GRU', 'LSTM') for layers in (1, 2) for bidirectional in (False, True)
               for batch_first in (True, False)]
    with open(os.path.join(out_dir, 'manifest.json'), 'w') as handle:
        json.dump({'format': 1, 'configs': configs}, handle, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
