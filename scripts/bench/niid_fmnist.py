"""The NIID-Bench Fashion-MNIST CNN for `npm run bench:fmnist`: exports it for fedgate, and runs the same
federation in plain PyTorch as the bench's reference.

Usage:
  /usr/bin/python3 scripts/bench/niid_fmnist.py export <out.onnx> --seed S [--activation relu|tanh]
  /usr/bin/python3 scripts/bench/niid_fmnist.py fedavg --data <dir> --parts <parts.json> --seed S \
      --rounds R --epochs E [--batch 64] [--lr 0.01] [--momentum 0.9] [--weight-decay 1e-5] [--threads 2]

The model is NIID-Bench's SimpleCNN for 28x28 grey images (Li, Diao, Chen, He, "Federated Learning on
Non-IID Data Silos: An Experimental Study", ICDE 2022; the Flower baselines' niid_bench): conv 1->6 5x5,
ReLU, max-pool 2x2, conv 6->16 5x5, ReLU, max-pool 2x2, 256 -> 120 -> 84 -> 10 with ReLU. `export` writes
it as torch.onnx.export would for a team (opset 17, input 'input' [N,1,28,28], output 'logits', batch
axis dynamic) with the initial weights of torch.manual_seed(S); `fedavg` starts from the same weights.
`--activation tanh` exports the same network with tanh in place of each ReLU (the tempered-sigmoid choice
for DP-SGD of Papernot et al., AAAI 2021: bounded activations keep per-example gradients small, so less
of each is clipped away); the layers and initial weights are unchanged.

`fedavg` is FedAvg as NIID-Bench runs it: every round each client (in turn, on this process's threads)
copies the global model, trains E local epochs over its examples in shuffled batches of B (the last batch
smaller) with a fresh SGD(lr, momentum, weight_decay), and the global model becomes the average weighted
by example counts. Pixels are scaled to [0, 1] (transforms.ToTensor), no other normalisation. After each
round the global model is scored on the 10,000 test images. --parts is a JSON list of lists of training
example indices, one list per client (written by bench/fmnist.ts, so both runs use the same partition).
Prints one JSON line: per-round accuracy and seconds (training and aggregation; evaluation not timed).
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch


class SimpleCnn(torch.nn.Module):
    def __init__(self, activation='relu'):
        super().__init__()
        self.activation = torch.tanh if activation == 'tanh' else torch.relu
        self.conv1 = torch.nn.Conv2d(1, 6, 5)
        self.pool = torch.nn.MaxPool2d(2, 2)
        self.conv2 = torch.nn.Conv2d(6, 16, 5)
        self.fc1 = torch.nn.Linear(16 * 4 * 4, 120)
        self.fc2 = torch.nn.Linear(120, 84)
        self.fc3 = torch.nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(self.activation(self.conv1(x)))
        x = self.pool(self.activation(self.conv2(x)))
        x = x.reshape(x.shape[0], 16 * 4 * 4)
        x = self.activation(self.fc1(x))
        x = self.activation(self.fc2(x))
        return self.fc3(x)


def model_for(seed, activation='relu'):
    torch.manual_seed(seed)
    return SimpleCnn(activation)


def read_idx(path):
    with gzip.open(path, 'rb') if path.endswith('.gz') else open(path, 'rb') as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(directory, prefix):
    images = read_idx(os.path.join(directory, f'{prefix}-images-idx3-ubyte.gz'))
    labels = read_idx(os.path.join(directory, f'{prefix}-labels-idx1-ubyte.gz'))
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def export(path, seed, activation='relu'):
    model = model_for(seed, activation).eval()
    torch.onnx.export(
        model, torch.zeros(1, 1, 28, 28), path, opset_version=17, input_names=['input'], output_names=['logits'],
        dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}, do_constant_folding=False,
    )


def accuracy(model, images, labels):
    model.eval()
    with torch.no_grad():
        correct = 0
        for start in range(0, len(labels), 1000):
            correct += (model(images[start:start + 1000]).argmax(1) == labels[start:start + 1000]).sum().item()
    return correct / len(labels)


def fedavg(args):
    torch.set_num_threads(args.threads)
    train_x, train_y = load(args.data, 'train')
    test_x, test_y = load(args.data, 't10k')
    with open(args.parts) as f:
        parts = [torch.tensor(p, dtype=torch.int64) for p in json.load(f)]
    total = sum(len(p) for p in parts)
    global_model = model_for(args.seed)
    shuffler = torch.Generator().manual_seed(args.seed)
    loss_fn = torch.nn.CrossEntropyLoss()
    rounds = []
    for r in range(args.rounds):
        started = time.perf_counter()
        average = {k: torch.zeros_like(v) for k, v in global_model.state_dict().items()}
        for part in parts:
            local = SimpleCnn()
            local.load_state_dict(global_model.state_dict())
            local.train()
            opt = torch.optim.SGD(local.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
            for _ in range(args.epochs):
                order = part[torch.randperm(len(part), generator=shuffler)]
                for start in range(0, len(order), args.batch):
                    batch = order[start:start + args.batch]
                    opt.zero_grad()
                    loss_fn(local(train_x[batch]), train_y[batch]).backward()
                    opt.step()
            for k, v in local.state_dict().items():
                average[k] += v * (len(part) / total)
        global_model.load_state_dict(average)
        seconds = time.perf_counter() - started
        rounds.append({'round': r + 1, 'seconds': round(seconds, 3), 'accuracy': accuracy(global_model, test_x, test_y)})
        print(json.dumps({'progress': rounds[-1]}), flush=True)
    print(json.dumps({'rounds': rounds, 'threads': args.threads, 'torch': torch.__version__}))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest='command', required=True)
    e = sub.add_parser('export')
    e.add_argument('out')
    e.add_argument('--seed', type=int, required=True)
    e.add_argument('--activation', choices=['relu', 'tanh'], default='relu')
    f = sub.add_parser('fedavg')
    f.add_argument('--data', required=True)
    f.add_argument('--parts', required=True)
    f.add_argument('--seed', type=int, required=True)
    f.add_argument('--rounds', type=int, required=True)
    f.add_argument('--epochs', type=int, required=True)
    f.add_argument('--batch', type=int, default=64)
    f.add_argument('--lr', type=float, default=0.01)
    f.add_argument('--momentum', type=float, default=0.9)
    f.add_argument('--weight-decay', type=float, default=1e-5)
    f.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    if args.command == 'export':
        export(args.out, args.seed, args.activation)
    else:
        fedavg(args)


if __name__ == '__main__':
    main()
