"""Exports the models of `npm run bench:zoo` the way a team would bring them, and optionally times PyTorch.

Usage: /usr/bin/python3 scripts/bench/zoo_models.py <out_dir> [--time]
Writes <out_dir>/<key>.onnx for resnet18, mobilenet_v2, transformer, lstm and tabular, exported with
torch.onnx.export(opset 17, training=TRAINING, do_constant_folding=False) so BatchNorm stays a training-mode
node, batch axis dynamic. With --time it also prints one JSON line with PyTorch's own ms per training step
(1 thread, SGD, cross-entropy, median of 5 windows after warm-up) for the same models and batch sizes, so the
figures the bench compares against can be re-measured on the machine at hand.
Needs Debian's python3-torch and python3-torchvision (1.13 / 0.14).
"""
import json
import os
import statistics
import sys
import time

import torch
import torchvision

torch.set_num_threads(1)
torch.manual_seed(0)


class TransformerFeatures(torch.nn.Module):
    """Linear 16 -> 128, two encoder layers (d 128, 4 heads, ff 256), mean over the 64 steps, 10 classes."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Linear(16, 128)
        layer = torch.nn.TransformerEncoderLayer(d_model=128, nhead=4, dim_feedforward=256, dropout=0.0)
        self.encoder = torch.nn.TransformerEncoder(layer, num_layers=2)
        self.head = torch.nn.Linear(128, 10)

    def forward(self, x):
        h = self.embed(x).transpose(0, 1)  # [S, B, E]: torch 1.13's encoder default layout
        h = self.encoder(h)
        return self.head(h.mean(dim=0))


class Tabular(torch.nn.Module):
    """64 -> 256 LayerNorm GELU, a residual 256 GELU block, 2 classes."""

    def __init__(self):
        super().__init__()
        self.inp = torch.nn.Linear(64, 256)
        self.norm = torch.nn.LayerNorm(256)
        self.block = torch.nn.Linear(256, 256)
        self.head = torch.nn.Linear(256, 2)

    def forward(self, x):
        h = torch.nn.functional.gelu(self.norm(self.inp(x)))
        h = h + torch.nn.functional.gelu(self.block(h))
        return self.head(h)


class LstmLast(torch.nn.Module):
    """LSTM(16, 128) over 50 steps, batch first, the last hidden state into Linear(128, 10)."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(16, 128, batch_first=True)
        self.head = torch.nn.Linear(128, 10)

    def forward(self, x):
        return self.head(self.lstm(x)[1][0].squeeze(0))


class FedAvgCnn(torch.nn.Module):
    """fedgate's zoo CNN (McMahan et al. 2017): 5x5 conv 32, ReLU, 2x2 max pool, 5x5 conv 64, ReLU, 2x2 max pool,
    dense 512, ReLU, dense 10; convolutions padded to keep the size. Timed only: the bench builds fedgate's own."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        )
        self.fc1 = torch.nn.Linear(64 * 7 * 7, 512)
        self.fc2 = torch.nn.Linear(512, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(torch.flatten(self.features(x), 1))))


# Timed with --time but not exported (the bench trains fedgate's own zoo model of the same shape).
TIME_ONLY = {
    'fedavg_cnn': (FedAvgCnn, [1, 28, 28], 32, 10),
}

# key -> (constructor, example shape, batch size, classes)
MODELS = {
    'resnet18': (lambda: torchvision.models.resnet18(num_classes=10), [3, 32, 32], 32, 10),
    'mobilenet_v2': (lambda: torchvision.models.mobilenet_v2(num_classes=10), [3, 32, 32], 32, 10),
    'transformer': (TransformerFeatures, [64, 16], 32, 10),
    'lstm': (LstmLast, [50, 16], 32, 10),
    'tabular': (Tabular, [64], 256, 2),
}


def export(key, out_dir):
    build, shape, batch, _ = MODELS[key]
    model = build()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model.train()
    x = torch.rand([batch] + shape)
    torch.onnx.export(model, (x,), os.path.join(out_dir, f'{key}.onnx'), opset_version=17,
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                      input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})


def time_pytorch(key, windows=5, steps=20):
    build, shape, batch, classes = {**MODELS, **TIME_ONLY}[key]
    model = build()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.rand([batch] + shape)
    y = torch.randint(0, classes, [batch])

    def step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(5):
        step()
    results = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        results.append((time.perf_counter() - start) * 1000 / steps)
    return statistics.median(results)


def main():
    if len(sys.argv) < 2:
        sys.exit('usage: zoo_models.py <out_dir> [--time]')
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for key in MODELS:
        export(key, out_dir)
    if '--time' in sys.argv[2:]:
        print(json.dumps({key: round(time_pytorch(key), 2) for key in {**MODELS, **TIME_ONLY}}))


if __name__ == '__main__':
    main()
