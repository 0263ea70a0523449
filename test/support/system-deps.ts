/**
 * The one place a test may be skipped: tests that need something of the machine (a Debian package, a
 * runtime without an optional component) ask here first. On a developer's machine a missing dependency
 * skips the test with the command that provides it; under CI=true it is a failure, never a skip
 * (.ci/run installs every package listed here). Tests never skip any other way.
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

export interface SystemDependency {
  /** Debian package(s) to install, as in `apt-get install -y <packages>`; empty when no package provides it. */
  readonly packages: readonly string[];
  /** What the test needs and how to get it, for a dependency no Debian package provides. */
  readonly remedy?: string;
  /** True when the dependency is usable on this machine. */
  readonly present: () => boolean;
}

/** The Python interpreter that sees Debian's python3-* packages (not a pyenv/venv python3 on PATH). */
export const DEBIAN_PYTHON = '/usr/bin/python3';

function pythonImports(module: string): () => boolean {
  return () =>
    existsSync(DEBIAN_PYTHON) &&
    spawnSync(DEBIAN_PYTHON, ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0;
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const PROMETHEUS_BINARY = '/usr/bin/prometheus';
export const PROMTOOL_BINARY = '/usr/bin/promtool';
export const CHROMIUM_BINARY = '/usr/bin/chromium';

export const systemDependencies = {
  fashionMnist: {
    packages: ['dataset-fashion-mnist'],
    present: () => existsSync(`${FASHION_MNIST_DIR}/train-images-idx3-ubyte.gz`),
  },
  pythonOnnx: { packages: ['python3-onnx'], present: pythonImports('onnx') },
  /** SciPy for the independent reference implementations (scripts/dp/rdp_reference.py). */
  pythonScipy: { packages: ['python3-scipy'], present: pythonImports('scipy') },
  /** PyTorch 1.13 / torchvision 0.14 for the reference harness (scripts/torch_reference/, which also reads .onnx). */
  pythonTorch: {
    packages: ['python3-torch', 'python3-torchvision', 'python3-onnx'],
    present: () => pythonImports('torch')() && pythonImports('torchvision')() && pythonImports('onnx')(),
  },
  /** Debian's scikit-learn: its bundled datasets and the reference regression fit. */
  pythonSklearn: { packages: ['python3-sklearn'], present: pythonImports('sklearn') },
  pythonGrpc: {
    packages: ['python3-grpcio', 'protobuf-compiler', 'protobuf-compiler-grpc'],
    present: () =>
      pythonImports('grpc')() && existsSync('/usr/bin/protoc') && existsSync('/usr/bin/grpc_python_plugin'),
  },
  /** Debian's Prometheus server (and its promtool), scraping the metrics endpoints of a running federation. */
  prometheus: { packages: ['prometheus'], present: () => existsSync(PROMETHEUS_BINARY) && existsSync(PROMTOOL_BINARY) },
  /** Debian's Chromium, driven by playwright-core (never a browser playwright downloads). */
  chromium: { packages: ['chromium'], present: () => existsSync(CHROMIUM_BINARY) },
} satisfies Record<string, SystemDependency>;

export interface DependencyCheck {
  /** True when the test must be skipped (dependency missing, not under CI). */
  readonly skip: boolean;
  /** Why, with the command that fixes it. */
  readonly reason: string;
}

/**
 * Checks a dependency at collection time. Use as `describe.skipIf(check.skip)(check.reason + ...)` or
 * call `assertPresent` inside the test. Under CI=true a missing dependency throws so the run fails.
 */
export function checkSystemDependency(dep: SystemDependency, env: NodeJS.ProcessEnv = process.env): DependencyCheck {
  if (dep.present()) return { skip: false, reason: '' };
  const install = `needs Debian package(s) ${dep.packages.join(', ')}: run \`sudo apt-get update && sudo apt-get install -y ${dep.packages.join(' ')}\``;
  const reason = dep.packages.length === 0 ? `needs ${dep.remedy ?? 'a dependency this machine lacks'}` : `${install}${dep.remedy === undefined ? '' : `; ${dep.remedy}`}`;
  if (env['CI'] === 'true') {
    throw new Error(`CI=true and a required system dependency is missing: ${reason}`);
  }
  return { skip: true, reason: `skipped: ${reason}` };
}
