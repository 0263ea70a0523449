/**
 * LSTM (ONNX LSTM-14, the subset rnn.ts describes). Gate blocks of W, R and B are in ONNX order i, o, f, c
 * (PyTorch's nn.LSTM packs i, f, g, o; torch.onnx.export reorders them). Per step, with every product
 * written x W^T as in the ONNX spec:
 *   [i, o, f] = sigmoid(x_t W_iof^T + h_{t-1} R_iof^T + Wb_iof + Rb_iof)
 *   g = tanh(x_t W_c^T + h_{t-1} R_c^T + Wb_c + Rb_c)
 *   c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)
 *
 * Backward through time, from the last processed step to the first, with dh_t = dY_t + dh from step t+1:
 *   do = dh_t * tanh(c_t),  dc_t += dh_t * o * (1 - tanh(c_t)^2)
 *   di = dc_t * g, df = dc_t * c_{t-1}, dg = dc_t * i, dc_{t-1} = dc_t * f
 *   pre-activation gradients dA = [di, do, df] * s * (1 - s) (s the sigmoid outputs), dg * (1 - g^2)
 *   dh_{t-1} = dA R;  dW = sum_t dA^T x_t,  dR = sum_t dA^T h_{t-1},  dWb = dRb = sum_t dA.
 */
import type { OpRule } from '../rule.js';
import {
  has,
  Unroller,
  callLayout,
  processingOrder,
  recurrentFacts,
  gateGradsOrZeros,
  recurrentLayout,
  type RecurrentKind,
} from './rnn.js';
import { bindOutput, copyNode, outputNames, savedValue } from './emitted.js';
const LSTM_KIND: RecurrentKind = {
  opType: 'LSTM',
  gates: 4,
  defaultActivations: ['Sigmoid', 'Tanh', 'Tanh'],
  outputs: 3,
  stateInputs: [5, 6],
};

const INITIAL_H = 5;
const INITIAL_C = 6;


export const LSTM: OpRule = {
  differentiableInputs: [0, 1, 2, 3, INITIAL_H, INITIAL_C],
  infer: (node, inputs) => recurrentFacts(node, inputs, LSTM_KIND),
  emit(node, inputs, facts, ctx) {
    if (ctx.mode === 'eval') return { outputs: copyNode(ctx.builder, node, inputs) };
    const layout = recurrentLayout(node, facts, LSTM_KIND);
    const u = new Unroller(ctx.builder, ctx.floatType, inputs[0] as string, layout.seq);
    const size = layout.hidden;
    const gated = 4 * size;
    const [x, w, r, bias] = inputs as [string, string, string, string];
    const xRows = u.rowsOf(x, layout.input);
    const saved: Record<string, string> = { xRows };
    const sequences: string[] = [];
    const lastHidden: string[] = [];
    const lastCell: string[] = [];
    for (let d = 0; d < layout.directions; d++) {
      const weights = u.direction(w, d, layout.directions);
      const recurrent = u.direction(r, d, layout.directions);
      saved[`w${d}`] = weights;
      saved[`r${d}`] = recurrent;
      let combinedBias: string | undefined;
      if (has(inputs, 3)) {
        const [inputBias, recurrentBias] = u.split(u.direction(bias, d, layout.directions), [gated, gated]) as [string, string];
        combinedBias = u.op('Add', [inputBias, recurrentBias]);
      }
      const projected = u.stepsOf(u.gemmTransB(xRows, weights, combinedBias));
      let h = has(inputs, INITIAL_H) ? u.direction(inputs[INITIAL_H] as string, d, layout.directions) : undefined;
      let c = has(inputs, INITIAL_C) ? u.direction(inputs[INITIAL_C] as string, d, layout.directions) : undefined;
      if (h !== undefined) saved[`h0.${d}`] = h;
      if (c !== undefined) saved[`c0.${d}`] = c;
      const hiddens = new Array<string>(layout.seq);
      for (const t of processingOrder(layout, d)) {
        const xw = projected[t] as string;
        const pre = h === undefined ? xw : u.gemmTransB(h, recurrent, xw);
        const [sigmoidPre, candidatePre] = u.split(pre, [3 * size, size]) as [string, string];
        const s = u.op('Sigmoid', [sigmoidPre]);
        const [i, o, f] = u.split(s, [size, size, size]) as [string, string, string];
        const g = u.op('Tanh', [candidatePre]);
        const ig = u.op('Mul', [i, g]);
        const cNext = c === undefined ? ig : u.op('Add', [u.op('Mul', [f, c]), ig]);
        const tanhC = u.op('Tanh', [cNext]);
        const hNext = u.op('Mul', [o, tanhC]);
        Object.assign(saved, { [`${d}.${t}.s`]: s, [`${d}.${t}.i`]: i, [`${d}.${t}.o`]: o, [`${d}.${t}.f`]: f });
        Object.assign(saved, { [`${d}.${t}.g`]: g, [`${d}.${t}.c`]: cNext, [`${d}.${t}.tanhC`]: tanhC, [`${d}.${t}.h`]: hNext });
        hiddens[t] = hNext;
        h = hNext;
        c = cNext;
      }
      if (node.outputs[0] !== '') sequences.push(u.sequenceOf(hiddens, size));
      lastHidden.push(h as string);
      lastCell.push(c as string);
    }
    const outputs = outputNames(ctx.builder, node);
    if (sequences.length > 0) bindOutput(ctx.builder, outputs[0] ?? '', u.concat(sequences, 1));
    if ((outputs[1] ?? '') !== '') bindOutput(ctx.builder, outputs[1] as string, u.stackDirections(lastHidden));
    if ((outputs[2] ?? '') !== '') bindOutput(ctx.builder, outputs[2] as string, u.stackDirections(lastCell));
    return { outputs, saved };
  },
  backward(call, grads, needs, ctx) {
    const layout = callLayout(call, LSTM_KIND);
    const u = new Unroller(ctx.builder, ctx.floatType, call.inputs[0] as string, layout.seq);
    const value = (key: string): string => savedValue('LSTM', call.saved, key);
    const [gradY, gradLastH, gradLastC] = grads;
    const inputGrads: string[] = [];
    const weightGrads: string[] = [];
    const recurrentGrads: string[] = [];
    const biasGrads: string[] = [];
    const initialHGrads: string[] = [];
    const initialCGrads: string[] = [];
    for (let d = 0; d < layout.directions; d++) {
      const order = processingOrder(layout, d);
      const recurrent = value(`r${d}`);
      const fromY = gradY === undefined ? undefined : u.sequenceGradient(gradY, d, layout);
      let dh = gradLastH === undefined ? undefined : u.direction(gradLastH, d, layout.directions);
      let dc = gradLastC === undefined ? undefined : u.direction(gradLastC, d, layout.directions);
      const gateGrads = new Array<string | undefined>(layout.seq);
      const recurrentRows: string[] = [];
      const previousHiddens: string[] = [];
      for (let k = layout.seq - 1; k >= 0; k--) {
        const t = order[k] as number;
        const before = k > 0 ? order[k - 1] : undefined;
        const hPrev = before === undefined ? call.saved[`h0.${d}`] : value(`${d}.${before}.h`);
        const cPrev = before === undefined ? call.saved[`c0.${d}`] : value(`${d}.${before}.c`);
        const [s, i, o, f, g, tanhC] = ['s', 'i', 'o', 'f', 'g', 'tanhC'].map((key) => value(`${d}.${t}.${key}`)) as [string, string, string, string, string, string];
        const dhT = u.sum([dh, fromY?.[t]]);
        let dcT = dc;
        let dO: string | undefined;
        if (dhT !== undefined) {
          dO = u.op('Mul', [dhT, tanhC]);
          dcT = u.sum([dcT, u.op('Mul', [u.op('Mul', [dhT, o]), u.oneMinus(u.op('Mul', [tanhC, tanhC]))])]);
        }
        if (dcT === undefined) {
          dh = undefined;
          dc = undefined;
          continue;
        }
        dO ??= u.zerosLike(dcT);
        const dI = u.op('Mul', [dcT, g]);
        const dF = cPrev === undefined ? u.zerosLike(dcT) : u.op('Mul', [dcT, cPrev]);
        const dSigmoidPre = u.op('Mul', [u.concat([dI, dO, dF], 1), u.op('Mul', [s, u.oneMinus(s)])]);
        const dCandidatePre = u.op('Mul', [u.op('Mul', [dcT, i]), u.oneMinus(u.op('Mul', [g, g]))]);
        const gates = u.concat([dSigmoidPre, dCandidatePre], 1);
        gateGrads[t] = gates;
        const wantPrevious = (index: number): boolean => k > 0 || needs[index] === true;
        dc = cPrev !== undefined && wantPrevious(INITIAL_C) ? u.op('Mul', [dcT, f]) : undefined;
        dh = undefined;
        if (hPrev !== undefined) {
          recurrentRows.push(gates);
          previousHiddens.push(hPrev);
          if (wantPrevious(INITIAL_H)) dh = u.gemm(gates, recurrent);
        }
      }
      if (needs[INITIAL_H]) initialHGrads.push(dh ?? u.zerosLike(value(`h0.${d}`)));
      if (needs[INITIAL_C]) initialCGrads.push(dc ?? u.zerosLike(value(`c0.${d}`)));
      const gateRows = u.rowsOfSteps(gateGradsOrZeros(u, gateGrads, 'LSTM', d));
      if (needs[0]) inputGrads.push(u.gemm(gateRows, value(`w${d}`)));
      if (needs[1]) weightGrads.push(u.gemm(gateRows, value('xRows'), { transA: true }));
      if (needs[2]) {
        recurrentGrads.push(
          recurrentRows.length === 0
            ? u.zerosLike(recurrent)
            : u.gemm(u.concat(recurrentRows, 0), u.concat(previousHiddens, 0), { transA: true }),
        );
      }
      if (needs[3]) {
        const biasGrad = u.columnSums(gateRows);
        biasGrads.push(u.concat([biasGrad, biasGrad], 0));
      }
    }
    const summedInput = u.sum(inputGrads);
    return [
      summedInput === undefined ? undefined : u.fromRows(summedInput, layout.input),
      needs[1] ? u.stackDirections(weightGrads) : undefined,
      needs[2] ? u.stackDirections(recurrentGrads) : undefined,
      needs[3] ? u.stackDirections(biasGrads) : undefined,
      undefined,
      needs[INITIAL_H] ? u.stackDirections(initialHGrads) : undefined,
      needs[INITIAL_C] ? u.stackDirections(initialCGrads) : undefined,
    ];
  },
};
