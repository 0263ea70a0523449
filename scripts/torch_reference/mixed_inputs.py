"""Export a small classifier with two named inputs, as a tabular team would bring it: float32 'numeric'
[batch, 4] and int64 'category' [batch] ids through an nn.Embedding table, concatenated into a Linear head.

Usage: /usr/bin/python3 scripts/torch_reference/mixed_inputs.py OUT.onnx
(Debian python3-torch 1.13; the test that trains it, test/integration/named-inputs-training.test.ts, runs it.)
"""
import sys

import torch
from torch import nn

CATEGORIES = 6
CLASSES = 3


class MixedInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(CATEGORIES, 4)
        self.hidden = nn.Linear(4 + 4, 16)
        self.head = nn.Linear(16, CLASSES)

    def forward(self, numeric, category):
        joined = torch.cat([numeric, self.embedding(category)], dim=1)
        return self.head(torch.relu(self.hidden(joined)))


def main(out_path):
    torch.manual_seed(0)
    model = MixedInputs().eval()
    numeric = torch.randn(8, 4)
    category = torch.randint(0, CATEGORIES, (8,))
    torch.onnx.export(
        model, (numeric, category), out_path, opset_version=17, input_names=['numeric', 'category'],
        output_names=['logits'], dynamic_axes={'numeric': {0: 'batch'}, 'category': {0: 'batch'}, 'logits': {0: 'batch'}},
    )


if __name__ == '__main__':
    main(sys.argv[1])
