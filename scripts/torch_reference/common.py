"""Shared PyTorch reference harness: export a model as fedgate imports it and record, for one fixed batch,
PyTorch's loss, every parameter gradient and the updated BatchNorm running statistics.

Run with Debian's /usr/bin/python3 (python3-torch 1.13, python3-torchvision 0.14, python3-onnx). A family
script (cnn.py, ...) builds the model and the batch and calls `write_reference`; test/support/
torch-reference.ts runs it into a temporary directory and compares fedgate's training step against it.

Output directory layout (manifest.json, format 1):
  model.onnx                  torch.onnx.export(..., opset_version=17, training=TRAINING,
                              do_constant_folding=False), batch axis dynamic
  manifest.json               {format, family, model, loss: {kind, value}, inputs: [{name, dtype, shape,
                              file}], targets: {dtype, shape, file}, classes,
                              parameters: [{name, shape, gradient}], buffers: [{name, shape, role,
                              updated, updatedOnnx?}]}
  *.bin                       raw little-endian float32 / int64 arrays, row-major
Every `name` in parameters/buffers is an ONNX initializer name (= the state_dict key for models whose
export keeps them). The gradient is d loss / d parameter for the mean loss over the batch. `updated` is
PyTorch's running statistic after the step; for running_var, `updatedOnnx` is the same update with the
population batch variance that ONNX BatchNormalization-15 (and fedgate) blend in, where PyTorch uses the
unbiased one.
"""
import copy
import json
import os
import sys

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn.functional as F

OPSET = 17
FORMAT = 1


def disable_dropout(model):
    """Dropout p=0 (and torchvision's StochasticDepth p=0) for the comparison only: random masks differ."""
    for module in model.modules():
        if isinstance(module, (torch.nn.Dropout, torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.Dropout3d,
                               torch.nn.AlphaDropout)):
            module.p = 0.0
        elif type(module).__name__ == 'StochasticDepth':
            module.p = 0.0
    return model


def _write(out_dir, file_name, array):
    path = os.path.join(out_dir, file_name)
    array = np.ascontiguousarray(array)
    if array.dtype == np.float32:
        array.astype('<f4').tofile(path)
    elif array.dtype == np.int64:
        array.astype('<i8').tofile(path)
    else:
        raise TypeError(f'{file_name}: unsupported dtype {array.dtype}; expected float32 or int64')
    return file_name


def _dtype_name(array):
    return {np.dtype(np.float32): 'float32', np.dtype(np.int64): 'int64'}[array.dtype]


def _record_population_variance_updates(model):
    """Hooks every BatchNorm so that the forward pass records, per running_var buffer name, the ONNX-spec
    update (1 - momentum) * running_var + momentum * population batch variance (torch momentum)."""
    results = {}
    handles = []
    for module_name, module in model.named_modules():
        if not isinstance(module, torch.nn.modules.batchnorm._BatchNorm) or module.momentum is None:
            continue
        key = f'{module_name}.running_var' if module_name else 'running_var'

        def hook(module, args, key=key):
            x = args[0].detach().double()
            axes = [0] + list(range(2, x.dim()))
            variance = x.var(dim=axes, unbiased=False)
            old = module.running_var.detach().double()
            results[key] = ((1 - module.momentum) * old + module.momentum * variance).float().numpy()
        handles.append(module.register_forward_pre_hook(hook))
    return results, handles


LOSSES = {
    'cross_entropy': lambda output, target: F.cross_entropy(output, target),
}


def write_reference(family, model, inputs, targets, out_dir, loss='cross_entropy', classes=None):
    """Exports `model` (train mode, BatchNorm on batch statistics) and writes the reference for one batch.

    inputs: dict name -> tensor (ordered as the model's forward arguments); targets: tensor.
    """
    if loss not in LOSSES:
        raise ValueError(f'loss {loss!r}; expected one of {sorted(LOSSES)}')
    os.makedirs(out_dir, exist_ok=True)
    disable_dropout(model)
    model.train()
    names = list(inputs)
    args = tuple(inputs[n] for n in names)
    # The export traces one training-mode forward, which moves the running statistics: export a copy.
    exported = copy.deepcopy(model)
    model_path = os.path.join(out_dir, 'model.onnx')
    dynamic = {n: {0: 'batch'} for n in names}
    dynamic['logits'] = {0: 'batch'}
    torch.onnx.export(exported, args, model_path, opset_version=OPSET, training=torch.onnx.TrainingMode.TRAINING,
                      do_constant_folding=False, input_names=names, output_names=['logits'],
                      dynamic_axes=dynamic)
    graph = onnx.load(model_path).graph
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}

    # Start PyTorch from exactly the exported initializer values.
    state = model.state_dict()
    with torch.no_grad():
        for name, value in initializers.items():
            if name in state and state[name].shape == tuple(value.shape):
                state[name].copy_(torch.from_numpy(np.array(value)))
    named_parameters = dict(model.named_parameters())
    named_buffers = dict(model.named_buffers())
    onnx_running_var, hooks = _record_population_variance_updates(model)
    model.zero_grad(set_to_none=True)
    output = model(*args)
    for hook in hooks:
        hook.remove()
    value = LOSSES[loss](output, targets)
    value.backward()

    manifest = {
        'format': FORMAT,
        'family': family,
        'model': 'model.onnx',
        'torch': torch.__version__,
        'loss': {'kind': loss, 'value': float(value.item())},
        'classes': int(classes if classes is not None else output.shape[1]),
        'inputs': [],
        'parameters': [],
        'buffers': [],
    }
    for index, name in enumerate(names):
        array = inputs[name].detach().numpy()
        manifest['inputs'].append({'name': name, 'dtype': _dtype_name(array), 'shape': list(array.shape),
                                   'file': _write(out_dir, f'input_{index}.bin', array)})
    target_array = targets.detach().numpy()
    manifest['targets'] = {'dtype': _dtype_name(target_array), 'shape': list(target_array.shape),
                           'file': _write(out_dir, 'targets.bin', target_array)}
    for index, tensor in enumerate(graph.initializer):
        name = tensor.name
        if name in named_parameters:
            parameter = named_parameters[name]
            grad = parameter.grad if parameter.grad is not None else torch.zeros_like(parameter)
            manifest['parameters'].append({'name': name, 'shape': list(parameter.shape),
                                           'gradient': _write(out_dir, f'grad_{index}.bin',
                                                              grad.detach().numpy().astype(np.float32))})
        elif name in named_buffers and (name.endswith('running_mean') or name.endswith('running_var')):
            buffer = named_buffers[name]
            entry = {'name': name, 'shape': list(buffer.shape),
                     'role': 'running_mean' if name.endswith('running_mean') else 'running_var',
                     'updated': _write(out_dir, f'buffer_{index}.bin', buffer.detach().numpy().astype(np.float32))}
            if name in onnx_running_var:
                entry['updatedOnnx'] = _write(out_dir, f'buffer_{index}.onnx.bin', onnx_running_var[name])
            manifest['buffers'].append(entry)
    missing = [n for n in named_parameters if n not in initializers]
    if missing:
        manifest['parametersNotInOnnx'] = missing
    with open(os.path.join(out_dir, 'manifest.json'), 'w') as handle:
        json.dump(manifest, handle, indent=1)
    return manifest


def main(families, argv=None):
    """CLI shared by family scripts: `<script> FAMILY OUT_DIR`; FAMILY is a key of `families`."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in families:
        sys.stderr.write(f'usage: {os.path.basename(sys.argv[0])} FAMILY OUT_DIR; FAMILY one of {", ".join(families)}\n')
        return 2
    torch.manual_seed(0)
    torch.set_num_threads(1)
    family, out_dir = argv
    families[family](family, out_dir)
    return 0
