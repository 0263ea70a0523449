/**
 * Per-example forms of GRU and LSTM (the subset model/autodiff/ops/rnn.ts trains: layout 0, default
 * activations, GRU with linear_before_reset = 1, no sequence lengths, no peepholes). A node whose W, R or
 * B is a per-example copy is unrolled here into primitive nodes - MatMul, Slice, Sigmoid, Tanh, Mul, Add -
 * whose per-example forms and gradients already exist: the input projection X W^T of all time steps is
 * one broadcast MatMul [seq, B, 1, in] @ [B, in, G*H], each step's h R^T one [B, 1, H] @ [B, H, G*H].
 * The gate algebra is the ONNX spec's (gru.ts and lstm.ts state it):
 *   GRU: [z, r] = sigmoid(xW_zr + Wb_zr + hR_zr + Rb_zr), n = tanh(xW_h + Wb_h + r (hR_h + Rb_h)),
 *        h' = n + z (h - n);
 *   LSTM: [i, o, f] = sigmoid(.), g = tanh(.) of xW + Wb + hR + Rb, c' = f c + i g, h' = o tanh(c').
 * A missing initial state is zero, which the first step uses in closed form.
 */
import type { NodeIR } from '../onnx/ir.js';
import type { ValueFacts } from '../autodiff/facts.js';
import { attrInt, int, ints, refuse, type Rewriter } from './per-example-rewriter.js';

const present = (inputs: readonly string[], index: number): boolean => inputs[index] !== undefined && inputs[index] !== '';

export function rewriteRecurrent(rw: Rewriter, node: NodeIR, inputs: readonly string[], isExpanded: readonly boolean[], factsOf: (name: string) => ValueFacts): void {
  const lstm = node.opType === 'LSTM';
  const gates = lstm ? 4 : 3;
  for (const index of lstm ? [5, 6, 7] : [5]) {
    if (isExpanded[index]) throw refuse(node, 'takes a parameter as its initial state or peepholes');
  }
  if (present(inputs, 4) || (lstm && present(inputs, 7))) throw refuse(node, 'has sequence lengths or peepholes');
  if (!lstm && attrInt(node, 'linear_before_reset', 0) !== 1) throw refuse(node, 'has linear_before_reset = 0');
  const [x, w, r] = inputs as [string, string, string];
  const xShape = factsOf(node.inputs[0] as string).shape;
  const wShape = factsOf(node.inputs[1] as string).shape;
  const seq = xShape[0] as number;
  const directions = wShape[0] as number;
  const hidden = (wShape[1] as number) / gates;
  const width = gates * hidden;
  const direction = node.attributes['direction']?.kind === 'string' ? node.attributes['direction'].value : 'forward';
  const hasBias = present(inputs, 3);

  /** Direction d of a [dirs, ...] tensor, per example ([B, ...]) when it is expanded. */
  const pick = (value: string, expanded: boolean, d: number): string => rw.op('Gather', [value, rw.index(d)], { axis: int(expanded ? 1 : 0) });
  /** [.., rows, cols] -> [.., cols, rows]. */
  const transposed = (value: string, expanded: boolean): string => rw.op('Transpose', [value], { perm: ints(expanded ? [0, 2, 1] : [1, 0]) });

  const sequences: string[][] = [];
  const lastHidden: string[] = [];
  const lastCell: string[] = [];
  for (let d = 0; d < directions; d++) {
    const reversed = direction === 'reverse' || (direction === 'bidirectional' && d === 1);
    const weights = transposed(pick(w, isExpanded[1] === true, d), isExpanded[1] === true); // [(B,) in, G*H]
    const recurrent = transposed(pick(r, isExpanded[2] === true, d), isExpanded[2] === true); // [(B,) H, G*H]
    let inputBias: string | undefined;
    let recurrentBias: string | undefined;
    if (hasBias) {
      const biases = pick(inputs[3] as string, isExpanded[3] === true, d); // [(B,) 2 G*H]
      inputBias = rw.slice(biases, 0, width, -1);
      recurrentBias = rw.slice(biases, width, 2 * width, -1);
    }
    // Input projection of every step at once: [seq, B, G*H].
    let projected = isExpanded[1]
      ? rw.op('Squeeze', [rw.op('MatMul', [rw.op('Unsqueeze', [x, rw.ints([2])]), weights]), rw.ints([2])])
      : rw.op('MatMul', [x, weights]);
    if (inputBias !== undefined) projected = rw.op('Add', [projected, inputBias]);
    let h: string | undefined = present(inputs, 5) ? rw.op('Gather', [inputs[5] as string, rw.index(d)], { axis: int(0) }) : undefined;
    let c: string | undefined = lstm && present(inputs, 6) ? rw.op('Gather', [inputs[6] as string, rw.index(d)], { axis: int(0) }) : undefined;
    const outputs = new Array<string>(seq);
    for (let step = 0; step < seq; step++) {
      const t = reversed ? seq - 1 - step : step;
      const xw = rw.op('Gather', [projected, rw.index(t)], { axis: int(0) }); // [B, G*H]
      let hr: string | undefined;
      if (h !== undefined) {
        hr = isExpanded[2] ? rw.op('Squeeze', [rw.op('MatMul', [rw.op('Unsqueeze', [h, rw.ints([1])]), recurrent]), rw.ints([1])]) : rw.op('MatMul', [h, recurrent]);
        if (recurrentBias !== undefined) hr = rw.op('Add', [hr, recurrentBias]);
      } else {
        hr = recurrentBias;
      }
      if (lstm) {
        const total = hr === undefined ? xw : rw.op('Add', [xw, hr]);
        const iof = rw.op('Sigmoid', [rw.slice(total, 0, 3 * hidden, -1)]);
        const g = rw.op('Tanh', [rw.slice(total, 3 * hidden, 4 * hidden, -1)]);
        const [i, o, f] = [0, 1, 2].map((k) => rw.slice(iof, k * hidden, (k + 1) * hidden, -1)) as [string, string, string];
        const fresh = rw.op('Mul', [i, g]);
        c = c === undefined ? fresh : rw.op('Add', [rw.op('Mul', [f, c]), fresh]);
        h = rw.op('Mul', [o, rw.op('Tanh', [c])]);
      } else {
        const zrInput = rw.slice(xw, 0, 2 * hidden, -1);
        const zr = rw.op('Sigmoid', [hr === undefined ? zrInput : rw.op('Add', [zrInput, rw.slice(hr, 0, 2 * hidden, -1)])]);
        const z = rw.slice(zr, 0, hidden, -1);
        const reset = rw.slice(zr, hidden, 2 * hidden, -1);
        const candidateInput = rw.slice(xw, 2 * hidden, 3 * hidden, -1);
        const n = rw.op('Tanh', [hr === undefined ? candidateInput : rw.op('Add', [candidateInput, rw.op('Mul', [reset, rw.slice(hr, 2 * hidden, 3 * hidden, -1)])])]);
        h = h === undefined ? rw.op('Sub', [n, rw.op('Mul', [z, n])]) : rw.op('Add', [n, rw.op('Mul', [z, rw.op('Sub', [h, n])])]);
      }
      outputs[t] = h;
    }
    sequences.push(outputs);
    lastHidden.push(h as string);
    if (c !== undefined) lastCell.push(c);
  }
  const [y, yH, yC] = node.outputs;
  if (y !== undefined && y !== '') {
    // Y [seq, dirs, B, H].
    const perStep = Array.from({ length: seq }, (_, t) => rw.op('Concat', sequences.map((outputs) => rw.op('Unsqueeze', [outputs[t] as string, rw.ints([0, 1])])), { axis: int(1) }));
    rw.op('Concat', perStep, { axis: int(0) }, y);
  }
  if (yH !== undefined && yH !== '') rw.op('Concat', lastHidden.map((value) => rw.op('Unsqueeze', [value, rw.ints([0])])), { axis: int(0) }, yH);
  if (yC !== undefined && yC !== '') rw.op('Concat', lastCell.map((value) => rw.op('Unsqueeze', [value, rw.ints([0])])), { axis: int(0) }, yC);
}
