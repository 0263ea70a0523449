"""Convolutional families for the PyTorch reference harness (see common.py).

Usage: /usr/bin/python3 scripts/torch_reference/cnn.py FAMILY OUT_DIR
The torchvision families are the torchvision 0.14 constructors themselves (full-size layers) with
num_classes=10 on a small input, so the test stays fast while every layer type is exercised.
"""
import os
import sys

import torch
from torch import nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CLASSES = 10


def image_batch(batch, size):
    return torch.randn(batch, 3, size, size), torch.randint(0, CLASSES, (batch,))


def torchvision_family(constructor, batch, size):
    def build(family, out_dir):
        model = constructor(num_classes=CLASSES)
        x, y = image_batch(batch, size)
        common.write_reference(family, model, {'input': x}, y, out_dir)
    return build


class TimeSeriesCnn(nn.Module):
    """A 1-D CNN for multichannel time series: padding modes, strided and transposed 1-D convolution."""

    def __init__(self, channels=3, classes=CLASSES):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReflectionPad1d(2), nn.Conv1d(channels, 16, 5), nn.BatchNorm1d(16), nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(16, 32, 3, stride=2, padding=1), nn.BatchNorm1d(32), nn.Hardswish(),
            nn.ConstantPad1d((1, 2), 0.5), nn.AvgPool1d(3, stride=2),
            nn.ConvTranspose1d(32, 16, 4, stride=2, padding=1), nn.ReLU6(),
            nn.ReplicationPad1d(1), nn.Conv1d(16, 24, 3, groups=8), nn.Hardsigmoid(),
        )
        self.head = nn.Linear(24 * 2, classes)

    def forward(self, x):
        h = self.features(x)
        pooled = torch.cat([nn.functional.adaptive_avg_pool1d(h, 1), nn.functional.adaptive_max_pool1d(h, 1)], 1)
        return self.head(torch.flatten(pooled, 1))


def time_series_cnn(family, out_dir):
    model = TimeSeriesCnn()
    x = torch.randn(4, 3, 64)
    y = torch.randint(0, CLASSES, (4,))
    common.write_reference(family, model, {'input': x}, y, out_dir)


class ConvDecoder(nn.Module):
    """An encoder/decoder (ConvTranspose with strides, padding, output_padding, groups) with a class head."""

    def __init__(self, classes=CLASSES):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.ConvTranspose2d(16, 8, (3, 4), stride=(2, 2), padding=(1, 1), output_padding=(1, 0), groups=2),
            nn.ReLU6(),
            nn.ZeroPad2d((1, 0, 2, 1)), nn.Conv2d(8, 4, 3, padding=0),
        )
        self.head = nn.Linear(4, classes)

    def forward(self, x):
        decoded = self.decoder(self.encoder(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(decoded, 1), 1))


def conv_decoder(family, out_dir):
    model = ConvDecoder()
    x, y = image_batch(4, 16)
    common.write_reference(family, model, {'input': x}, y, out_dir)


FAMILIES = {
    'resnet18': torchvision_family(torchvision.models.resnet18, 4, 64),
    'resnet50': torchvision_family(torchvision.models.resnet50, 2, 64),
    'mobilenet_v2': torchvision_family(torchvision.models.mobilenet_v2, 4, 64),
    'mobilenet_v3_small': torchvision_family(torchvision.models.mobilenet_v3_small, 4, 64),
    'efficientnet_b0': torchvision_family(torchvision.models.efficientnet_b0, 4, 64),
    'densenet121': torchvision_family(torchvision.models.densenet121, 2, 64),
    'time_series_cnn': time_series_cnn,
    'conv_decoder': conv_decoder,
}

if __name__ == '__main__':
    sys.exit(common.main(FAMILIES))
