"""Per-example gradients and the DP-SGD clipped sum from PyTorch 1.13, for fedgate's batched DP-SGD graph.

torch.func (vmap over grad) is not in 1.13, so every example's gradient comes from its own backward pass:
the loop DP-SGD libraries of that era (Opacus before hooks) used as their reference. Each model is exported
with torch.onnx.export (opset 17, do_constant_folding=False, batch axis dynamic); the gradients are taken
in float64 from the exported initializer values.

Usage: /usr/bin/python3 per_example_reference.py <family> <clip_norm> <out_dir>
Writes <out_dir>/model.onnx and <out_dir>/reference.json:
  {family, inputShape, classes, batch, clipNorm, input: [...], labels: [...],
   parameters: [{name, shape, perExample: [[...] per example], clippedSum: [...]}], norms: [...]}
The per-example loss is F.cross_entropy of the example alone; factor_b = min(1, C / (||g_b|| + 1e-6)).
"""
import json
import os
import sys

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F


class GroupNormCnn(nn.Module):
    """Conv, GroupNorm (exported as InstanceNormalization + Unsqueeze'd affine), grouped strided Conv, LayerNorm."""

    input_shape = [2, 8, 8]

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.gn = nn.GroupNorm(2, 4)
        self.conv2 = nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2)
        self.ln = nn.LayerNorm(64)
        self.fc = nn.Linear(64, 3)

    def forward(self, x):
        x = F.relu(self.gn(self.conv1(x)))
        x = F.relu(self.conv2(x))
        return self.fc(self.ln(torch.flatten(x, 1)))


class RecurrentNet(nn.Module):
    """Linear on [B, T, F] (MatMul with a transposed weight + Add), batch-first GRU, LayerNorm, Linear."""

    input_shape = [5, 4]

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 6)
        self.gru = nn.GRU(6, 5, batch_first=True)
        self.ln = nn.LayerNorm(5)
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        out, _ = self.gru(torch.tanh(self.proj(x)))
        return self.fc(self.ln(out[:, -1, :]))


FAMILIES = {'groupnorm_cnn': GroupNormCnn, 'recurrent': RecurrentNet}
BATCH = 4


def main():
    family, clip_norm, out_dir = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    torch.manual_seed(0)
    model = FAMILIES[family]()
    model.eval()
    x = torch.randn(BATCH, *model.input_shape)
    y = torch.tensor([0, 2, 1, 2])
    path = os.path.join(out_dir, 'model.onnx')
    torch.onnx.export(model, (x[:1],), path, opset_version=17, do_constant_folding=False,
                      input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    model = model.double()
    state = model.state_dict()
    with torch.no_grad():
        for name, value in initializers.items():
            if name in state and tuple(state[name].shape) == tuple(value.shape):
                state[name].copy_(torch.from_numpy(np.array(value, dtype=np.float64)))
    named = [(n, p) for n, p in model.named_parameters() if n in initializers]
    per_example = {n: [] for n, _ in named}
    norms = []
    for b in range(BATCH):
        model.zero_grad()
        F.cross_entropy(model(x[b:b + 1].double()), y[b:b + 1]).backward()
        squared = 0.0
        for n, p in named:
            g = p.grad.detach().numpy().copy()
            per_example[n].append(g.reshape(-1).tolist())
            squared += float((g * g).sum())
        norms.append(squared ** 0.5)
    parameters = []
    for n, p in named:
        rows = np.array(per_example[n])
        factors = np.array([min(1.0, clip_norm / (norm + 1e-6)) for norm in norms])
        parameters.append({'name': n, 'shape': list(p.shape), 'perExample': per_example[n],
                           'clippedSum': (factors[:, None] * rows).sum(axis=0).tolist()})
    with open(os.path.join(out_dir, 'reference.json'), 'w') as f:
        json.dump({'family': family, 'inputShape': model.input_shape, 'classes': 3, 'batch': BATCH,
                   'clipNorm': clip_norm, 'input': x.reshape(-1).tolist(), 'labels': y.tolist(),
                   'parameters': parameters, 'norms': norms}, f)


if __name__ == '__main__':
    main()
