"""Recurrent families for the PyTorch reference harness (see common.py).

Usage: /usr/bin/python3 scripts/torch_reference/rnn.py FAMILY OUT_DIR
Sequence classifiers as people write them: nn.GRU / nn.LSTM, two layers, bidirectional, batch_first,
a Linear head on the last time step (GRU) or on the mean over time (LSTM), cross-entropy. The export
(common.py: training mode, do_constant_folding=False) keeps PyTorch's rnn.weight_ih_l0... parameters and
reorders their gates into ONNX's W, R and B with Slice/Concat/Unsqueeze nodes, so fedgate's gradients
reach the very tensors PyTorch has gradients for.
"""
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CLASSES = 5
BATCH, SEQ, FEATURES, HIDDEN = 8, 20, 16, 64


class SequenceClassifier(nn.Module):
    def __init__(self, kind, pool):
        super().__init__()
        self.rnn = getattr(nn, kind)(FEATURES, HIDDEN, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * HIDDEN, CLASSES)
        self.pool = pool

    def forward(self, x):
        y, _ = self.rnn(x)
        features = y[:, -1] if self.pool == 'last' else y.mean(dim=1)
        return self.head(features)


def family(kind, pool):
    def build(name, out_dir):
        model = SequenceClassifier(kind, pool)
        x = torch.randn(BATCH, SEQ, FEATURES)
        y = torch.randint(0, CLASSES, (BATCH,))
        common.write_reference(name, model, {'input': x}, y, out_dir)
    return build


FAMILIES = {
    'gru_classifier': family('GRU', 'last'),
    'lstm_classifier': family('LSTM', 'mean'),
}

if __name__ == '__main__':
    sys.exit(common.main(FAMILIES))
