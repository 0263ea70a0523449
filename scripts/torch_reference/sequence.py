"""Sequence, text and tabular families for the PyTorch reference harness (see common.py).

Usage: /usr/bin/python3 scripts/torch_reference/sequence.py FAMILY OUT_DIR
- transformer: token ids -> nn.Embedding -> nn.TransformerEncoder (2 layers, d 128, 4 heads, ff 256,
  batch_first, dropout 0) with a key-padding mask computed from the ids (pad id 0) -> masked mean pool ->
  Linear. Exercises the attention export of torch 1.13: batched MatMul, Softmax on the last axis, the mask
  via Equal/Where/Add of -inf, Transpose/Reshape chains that fold heads into the batch, LayerNormalization.
- transformer_features: the same encoder on float32 features [batch, seq, 16] (Linear 16 -> 128 first; the
  benchmark's model), padding = all-zero time steps; one float32 input, so it runs through fedgate's
  training plan with a symbolic batch axis.
- transformer_fresh: transformer_features straight from its constructor, without `untie`: torch's export
  ties its equal initializers through Identity nodes and fedgate must untie them; the parameters the
  export left out as initializers are added to the manifest (their ONNX name is the Identity's output).
- multihead_attention: nn.MultiheadAttention called directly as most code does (sequence-first layout,
  need_weights=True so the head-averaged weights are computed too, a key-padding mask and a causal float
  attn_mask), a residual and LayerNorm, through the training plan.
- text: an embedding text classifier on int64 token ids (nn.Embedding + mean pool + Linear); ids repeat
  within and across examples, so the embedding gradient must accumulate.
- tabular: numeric columns -> Linear -> LayerNorm -> GELU (exact), a residual block with GELU (tanh) and
  SiLU, Linear (one float32 input: fedgate's own training plan path).
- tabular_mixed: the tabular net with a second named input, int64 categorical ids per column through
  nn.Embedding tables, concatenated with the numeric columns.
Every parameter is moved off its initial value first: torch.onnx.export merges initializers with equal
contents (a fresh TransformerEncoder's layers are deep copies), which would tie parameters that PyTorch
trains separately.
"""
import copy
import json
import os
import sys

import onnx
import torch
from torch import nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CLASSES = 4
PAD = 0


def untie(model):
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


class TransformerClassifier(nn.Module):
    def __init__(self, vocabulary=64, d_model=128, heads=4, feed_forward=256, layers=2, classes=CLASSES):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, feed_forward, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, classes)

    def forward(self, ids):
        padding = ids == PAD
        h = self.encoder(self.embedding(ids), src_key_padding_mask=padding)
        keep = (~padding).unsqueeze(-1).to(h.dtype)
        pooled = (h * keep).sum(1) / keep.sum(1)
        return self.head(pooled)


def padded_ids(batch, length, vocabulary):
    ids = torch.randint(1, vocabulary, (batch, length))
    for row in range(batch):
        valid = length - (row * 3) % (length - 2)
        ids[row, valid:] = PAD
    return ids


def transformer(family, out_dir):
    model = untie(TransformerClassifier())
    ids = padded_ids(8, 12, 64)
    common.write_reference(family, model, {'input': ids}, torch.randint(0, CLASSES, (8,)), out_dir)


class FeatureTransformer(nn.Module):
    def __init__(self, features=16, d_model=128, heads=4, feed_forward=256, layers=2, classes=CLASSES):
        super().__init__()
        self.project = nn.Linear(features, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, feed_forward, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, classes)

    def forward(self, x):
        padding = x.abs().sum(-1) == 0
        h = self.encoder(self.project(x), src_key_padding_mask=padding)
        return self.head(h.mean(1))


def transformer_features(family, out_dir):
    model = untie(FeatureTransformer())
    x = torch.randn(8, 12, 16)
    for row in range(8):
        x[row, 12 - row % 5:] = 0
    common.write_reference(family, model, {'input': x}, torch.randint(0, CLASSES, (8,)), out_dir)


def transformer_fresh(family, out_dir):
    model = FeatureTransformer()
    x = torch.randn(8, 12, 16)
    x[5:, 9:] = 0
    manifest = common.write_reference(family, model, {'input': x}, torch.randint(0, CLASSES, (8,)), out_dir)
    # The deduplication happens in an eval-mode export (the everyday recipe); without BatchNorm or dropout
    # that is the same function, so PyTorch's gradients above still apply.
    path = os.path.join(out_dir, manifest['model'])
    torch.onnx.export(copy.deepcopy(model).eval(), (x,), path, opset_version=common.OPSET, do_constant_folding=False,
                      input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
    graph = onnx.load(path).graph
    initializers = {t.name for t in graph.initializer}
    manifest['parametersNotInOnnx'] = [p['name'] for p in manifest['parameters'] if p['name'] not in initializers]
    manifest['parameters'] = [p for p in manifest['parameters'] if p['name'] in initializers]
    identity_outputs = {node.output[0] for node in graph.node if node.op_type == 'Identity'}
    parameters = dict(model.named_parameters())
    for index, name in enumerate(manifest.pop('parametersNotInOnnx', [])):
        if name not in identity_outputs:
            raise SystemExit(f'parameter {name} is neither an initializer nor an Identity output of the export')
        file_name = f'grad_identity_{index}.bin'
        parameters[name].grad.detach().numpy().astype('<f4').tofile(os.path.join(out_dir, file_name))
        manifest['parameters'].append({'name': name, 'shape': list(parameters[name].shape), 'gradient': file_name})
    with open(os.path.join(out_dir, 'manifest.json'), 'w') as handle:
        json.dump(manifest, handle, indent=1)


class AttentionClassifier(nn.Module):
    def __init__(self, features=16, d_model=64, heads=4, classes=CLASSES):
        super().__init__()
        self.project = nn.Linear(features, d_model)
        self.attention = nn.MultiheadAttention(d_model, heads)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, classes)

    def forward(self, x):
        padding = x.abs().sum(-1) == 0
        h = self.project(x).transpose(0, 1)
        length = h.shape[0]
        causal = torch.triu(torch.full((length, length), float('-inf')), diagonal=1)
        attended, weights = self.attention(h, h, h, key_padding_mask=padding, attn_mask=causal)
        h = self.norm(h + attended).transpose(0, 1)
        return self.head(h[:, -1] + 0 * weights.sum())


def multihead_attention(family, out_dir):
    model = untie(AttentionClassifier())
    x = torch.randn(6, 10, 16)
    x[3:, 8:] = 0
    common.write_reference(family, model, {'input': x}, torch.randint(0, CLASSES, (6,)), out_dir)


class TextClassifier(nn.Module):
    def __init__(self, vocabulary=100, width=32, classes=CLASSES):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, width)
        self.head = nn.Linear(width, classes)

    def forward(self, ids):
        return self.head(self.embedding(ids).mean(1))


def text(family, out_dir):
    model = untie(TextClassifier())
    # 16 examples of 20 ids drawn from 30: every id repeats many times within the batch.
    ids = torch.randint(0, 30, (16, 20))
    common.write_reference(family, model, {'input': ids}, torch.randint(0, CLASSES, (16,)), out_dir)


class TabularNet(nn.Module):
    def __init__(self, numeric=16, categories=(), width=64, classes=CLASSES):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(size, 4) for size in categories)
        self.stem = nn.Linear(numeric + 4 * len(categories), width)
        self.norm = nn.LayerNorm(width)
        self.block = nn.Sequential(nn.Linear(width, width), nn.GELU(approximate='tanh'), nn.Linear(width, width), nn.SiLU())
        self.block_norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, numeric, categorical=None):
        columns = [numeric]
        if categorical is not None:
            columns += [table(categorical[:, i]) for i, table in enumerate(self.embeddings)]
        h = F.gelu(self.norm(self.stem(torch.cat(columns, 1))))
        h = self.block_norm(h + self.block(h))
        return self.head(h)


def tabular(family, out_dir):
    model = untie(TabularNet())
    common.write_reference(family, model, {'input': torch.randn(32, 16)}, torch.randint(0, CLASSES, (32,)), out_dir)


def tabular_mixed(family, out_dir):
    sizes = (5, 11, 3)
    model = untie(TabularNet(categories=sizes))
    categorical = torch.stack([torch.randint(0, size, (32,)) for size in sizes], 1)
    inputs = {'numeric': torch.randn(32, 16), 'categorical': categorical}
    common.write_reference(family, model, inputs, torch.randint(0, CLASSES, (32,)), out_dir)


FAMILIES = {'transformer': transformer, 'transformer_features': transformer_features,
            'transformer_fresh': transformer_fresh, 'multihead_attention': multihead_attention, 'text': text, 'tabular': tabular, 'tabular_mixed': tabular_mixed}

if __name__ == '__main__':
    sys.exit(common.main(FAMILIES))
