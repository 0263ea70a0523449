/** Plain float64 reference implementations the training-graph tests compare against. */

export interface Batch {
  /** Row-major [B, D]. */
  readonly x: Float64Array;
  readonly labels: readonly number[];
}

/** Mean softmax cross-entropy of logits [B, C] (log-sum-exp, max-shifted). */
export function crossEntropy(logits: ArrayLike<number>, labels: readonly number[], classes: number): number {
  let total = 0;
  labels.forEach((label, row) => {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[row * classes + c] as number);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp((logits[row * classes + c] as number) - max);
    total += Math.log(sum) + max - (logits[row * classes + label] as number);
  });
  return total / labels.length;
}

/** Logistic regression logits x W^T + b with W [C, D]. */
export function logregLogits(w: ArrayLike<number>, b: ArrayLike<number>, batch: Batch, classes: number): Float64Array {
  const rows = batch.labels.length;
  const features = batch.x.length / rows;
  const logits = new Float64Array(rows * classes);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < classes; c++) {
      let z = b[c] as number;
      for (let d = 0; d < features; d++) z += (batch.x[r * features + d] as number) * (w[c * features + d] as number);
      logits[r * classes + c] = z;
    }
  }
  return logits;
}

/** Gradient of the mean cross-entropy of logistic regression: dW = G^T x, db = sum G, G = (p - y) / B. */
export function logregGradient(w: ArrayLike<number>, b: ArrayLike<number>, batch: Batch, classes: number): { w: Float64Array; b: Float64Array } {
  const rows = batch.labels.length;
  const features = batch.x.length / rows;
  const logits = logregLogits(w, b, batch, classes);
  const gw = new Float64Array(classes * features);
  const gb = new Float64Array(classes);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[r * classes + c] as number);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp((logits[r * classes + c] as number) - max);
    for (let c = 0; c < classes; c++) {
      const p = Math.exp((logits[r * classes + c] as number) - max) / sum;
      const g = (p - (batch.labels[r] === c ? 1 : 0)) / rows;
      gb[c] = (gb[c] as number) + g;
      for (let d = 0; d < features; d++) gw[c * features + d] = (gw[c * features + d] as number) + g * (batch.x[r * features + d] as number);
    }
  }
  return { w: gw, b: gb };
}

/** PyTorch torch.optim.SGD (dampening 0, nesterov off) on one tensor; returns the new velocity. */
export function sgdMomentumStep(w: Float64Array, v: Float64Array, g: ArrayLike<number>, lr: number, momentum: number, weightDecay: number): void {
  for (let i = 0; i < w.length; i++) {
    const grad = (g[i] as number) + weightDecay * (w[i] as number);
    v[i] = momentum * (v[i] as number) + grad;
    w[i] = (w[i] as number) - lr * (v[i] as number);
  }
}

/** PyTorch torch.optim.Adam (amsgrad off) on one tensor at step t (1-based, after increment). */
export function adamStep(
  w: Float64Array,
  m: Float64Array,
  v: Float64Array,
  g: ArrayLike<number>,
  t: number,
  lr: number,
  beta1: number,
  beta2: number,
  epsilon: number,
): void {
  const correction1 = 1 - beta1 ** t;
  const correction2 = 1 - beta2 ** t;
  for (let i = 0; i < w.length; i++) {
    const grad = g[i] as number;
    m[i] = beta1 * (m[i] as number) + (1 - beta1) * grad;
    v[i] = beta2 * (v[i] as number) + (1 - beta2) * grad * grad;
    const denominator = Math.sqrt(v[i] as number) / Math.sqrt(correction2) + epsilon;
    w[i] = (w[i] as number) - (lr / correction1) * ((m[i] as number) / denominator);
  }
}
