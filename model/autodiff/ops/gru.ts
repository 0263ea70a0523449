/**
 * GRU (ONNX GRU-14 with linear_before_reset = 1, the form nn.GRU exports; the subset rnn.ts describes).
 * Gate blocks of W, R and B are in ONNX order z, r, h (PyTorch packs r, z, n; torch.onnx.export reorders
 * them). Per step:
 *   [z, r] = sigmoid(x_t W_zr^T + Wb_zr + h_{t-1} R_zr^T + Rb_zr)
 *   n = tanh(x_t W_h^T + Wb_h + r * (h_{t-1} R_h^T + Rb_h))
 *   h_t = (1 - z) * n + z * h_{t-1}  (computed as n + z * (h_{t-1} - n))
 *
 * Backward through time, with dh_t = dY_t + dh from step t+1:
 *   dz = dh_t * (h_{t-1} - n), dn = dh_t * (1 - z), dnPre = dn * (1 - n^2), dr = dnPre * (h_{t-1} R_h^T + Rb_h)
 *   input-side pre-activation gradient  dX_t = [[dz, dr] * s * (1 - s), dnPre]
 *   recurrent-side                      dH_t = [[dz, dr] * s * (1 - s), dnPre * r]
 *   dh_{t-1} = dh_t * z + dH_t R;  dW = sum dX_t^T x_t, dR = sum dH_t^T h_{t-1}, dWb = sum dX_t, dRb = sum dH_t.
 */
import type { OpRule } from '../rule.js';
import {
  has,
  Unroller,
  callLayout,
  gateGradsOrZeros,
  processingOrder,
  recurrentFacts,
  recurrentLayout,
  type RecurrentKind,
} from './rnn.js';
import { bindOutput, copyNode, outputNames, savedValue } from './emitted.js';
const GRU_KIND: RecurrentKind = {
  opType: 'GRU',
  gates: 3,
  defaultActivations: ['Sigmoid', 'Tanh'],
  outputs: 2,
  stateInputs: [5],
};

const INITIAL_H = 5;


export const GRU: OpRule = {
  differentiableInputs: [0, 1, 2, 3, INITIAL_H],
  infer: (node, inputs) => recurrentFacts(node, inputs, GRU_KIND),
  emit(node, inputs, facts, ctx) {
    if (ctx.mode === 'eval') return { outputs: copyNode(ctx.builder, node, inputs) };
    const layout = recurrentLayout(node, facts, GRU_KIND);
    const u = new Unroller(ctx.builder, ctx.floatType, inputs[0] as string, layout.seq);
    const size = layout.hidden;
    const gated = 3 * size;
    const [x, w, r, bias] = inputs as [string, string, string, string];
    const xRows = u.rowsOf(x, layout.input);
    const saved: Record<string, string> = { xRows };
    const sequences: string[] = [];
    const lastHidden: string[] = [];
    for (let d = 0; d < layout.directions; d++) {
      const weights = u.direction(w, d, layout.directions);
      const recurrent = u.direction(r, d, layout.directions);
      saved[`w${d}`] = weights;
      saved[`r${d}`] = recurrent;
      let inputBias: string | undefined;
      let recurrentBias: string | undefined;
      if (has(inputs, 3)) [inputBias, recurrentBias] = u.split(u.direction(bias, d, layout.directions), [gated, gated]) as [string, string];
      const projected = u.stepsOf(u.gemmTransB(xRows, weights, inputBias));
      let h = has(inputs, INITIAL_H) ? u.direction(inputs[INITIAL_H] as string, d, layout.directions) : undefined;
      if (h !== undefined) saved[`h0.${d}`] = h;
      const hiddens = new Array<string>(layout.seq);
      for (const t of processingOrder(layout, d)) {
        const [xzr, xn] = u.split(projected[t] as string, [2 * size, size]) as [string, string];
        // h_{t-1} R^T + Rb; at the first step without an initial state it is Rb alone (broadcast).
        const hr = h === undefined ? recurrentBias : u.gemmTransB(h, recurrent, recurrentBias);
        let zrPre = xzr;
        let hn: string | undefined;
        if (hr !== undefined) {
          const [hzr, hnPart] = u.split(hr, [2 * size, size]) as [string, string];
          zrPre = u.op('Add', [xzr, hzr]);
          hn = hnPart;
        }
        const s = u.op('Sigmoid', [zrPre]);
        const [z, reset] = u.split(s, [size, size]) as [string, string];
        const n = u.op('Tanh', [hn === undefined ? xn : u.op('Add', [xn, u.op('Mul', [reset, hn])])]);
        let hNext: string;
        if (h === undefined) {
          hNext = u.op('Sub', [n, u.op('Mul', [z, n])]);
        } else {
          const difference = u.op('Sub', [h, n]);
          hNext = u.op('Add', [n, u.op('Mul', [z, difference])]);
          saved[`${d}.${t}.difference`] = difference;
        }
        Object.assign(saved, { [`${d}.${t}.s`]: s, [`${d}.${t}.z`]: z, [`${d}.${t}.r`]: reset, [`${d}.${t}.n`]: n, [`${d}.${t}.h`]: hNext });
        if (hn !== undefined) saved[`${d}.${t}.hn`] = hn;
        hiddens[t] = hNext;
        h = hNext;
      }
      if (node.outputs[0] !== '') sequences.push(u.sequenceOf(hiddens, size));
      lastHidden.push(h as string);
    }
    const outputs = outputNames(ctx.builder, node);
    if (sequences.length > 0) bindOutput(ctx.builder, outputs[0] ?? '', u.concat(sequences, 1));
    if ((outputs[1] ?? '') !== '') bindOutput(ctx.builder, outputs[1] as string, u.stackDirections(lastHidden));
    return { outputs, saved };
  },
  backward(call, grads, needs, ctx) {
    const layout = callLayout(call, GRU_KIND);
    const u = new Unroller(ctx.builder, ctx.floatType, call.inputs[0] as string, layout.seq);
    const value = (key: string): string => savedValue('GRU', call.saved, key);
    const [gradY, gradLastH] = grads;
    const inputGrads: string[] = [];
    const weightGrads: string[] = [];
    const recurrentGrads: string[] = [];
    const biasGrads: string[] = [];
    const initialHGrads: string[] = [];
    for (let d = 0; d < layout.directions; d++) {
      const order = processingOrder(layout, d);
      const recurrent = value(`r${d}`);
      const fromY = gradY === undefined ? undefined : u.sequenceGradient(gradY, d, layout);
      let dh = gradLastH === undefined ? undefined : u.direction(gradLastH, d, layout.directions);
      const inputGates = new Array<string | undefined>(layout.seq);
      const recurrentGates: string[] = [];
      const recurrentRows: string[] = [];
      const previousHiddens: string[] = [];
      for (let k = layout.seq - 1; k >= 0; k--) {
        const t = order[k] as number;
        const before = k > 0 ? order[k - 1] : undefined;
        const hPrev = before === undefined ? call.saved[`h0.${d}`] : value(`${d}.${before}.h`);
        const dhT = u.sum([dh, fromY?.[t]]);
        dh = undefined;
        if (dhT === undefined) continue;
        const [s, z, reset, n] = ['s', 'z', 'r', 'n'].map((key) => value(`${d}.${t}.${key}`)) as [string, string, string, string];
        const hn = call.saved[`${d}.${t}.hn`];
        const dz = hPrev === undefined ? u.op('Neg', [u.op('Mul', [dhT, n])]) : u.op('Mul', [dhT, value(`${d}.${t}.difference`)]);
        const dhZ = u.op('Mul', [dhT, z]);
        const dnPre = u.op('Mul', [u.op('Sub', [dhT, dhZ]), u.oneMinus(u.op('Mul', [n, n]))]);
        const dr = hn === undefined ? u.zerosLike(dnPre) : u.op('Mul', [dnPre, hn]);
        const dzrPre = u.op('Mul', [u.concat([dz, dr], 1), u.op('Mul', [s, u.oneMinus(s)])]);
        inputGates[t] = u.concat([dzrPre, dnPre], 1);
        if (hn === undefined) continue;
        const hiddenGates = u.concat([dzrPre, u.op('Mul', [dnPre, reset])], 1);
        recurrentGates.push(hiddenGates);
        if (hPrev !== undefined) {
          recurrentRows.push(hiddenGates);
          previousHiddens.push(hPrev);
          if (k > 0 || needs[INITIAL_H] === true) dh = u.gemm(hiddenGates, recurrent, { c: dhZ });
        }
      }
      if (needs[INITIAL_H]) initialHGrads.push(dh ?? u.zerosLike(value(`h0.${d}`)));
      const inputRows = u.rowsOfSteps(gateGradsOrZeros(u, inputGates, 'GRU', d));
      if (needs[0]) inputGrads.push(u.gemm(inputRows, value(`w${d}`)));
      if (needs[1]) weightGrads.push(u.gemm(inputRows, value('xRows'), { transA: true }));
      if (needs[2]) {
        recurrentGrads.push(
          recurrentRows.length === 0
            ? u.zerosLike(recurrent)
            : u.gemm(u.concat(recurrentRows, 0), u.concat(previousHiddens, 0), { transA: true }),
        );
      }
      if (needs[3]) {
        // B is present here, so every step has a recurrent side (at least Rb).
        biasGrads.push(u.concat([u.columnSums(inputRows), u.columnSums(u.concat(recurrentGates, 0))], 0));
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
    ];
  },
};
