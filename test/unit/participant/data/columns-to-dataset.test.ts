/**
 * ColumnTable -> model inputs and targets, on hand-built tables: every input and target kind, the
 * vocabulary, and for each bad cell an error naming file, row and column.
 */
import { describe, expect, it } from 'vitest';
import type { TaskDocument } from '../../../../model/index.js';
import { DataError, columnsToDataset, columnsToExamples, subset } from '../../../../participant/index.js';
import type { Column, ColumnTable } from '../../../../participant/data/table.js';
import { thrownBy } from '../../../support/thrown.js';

const numeric = (values: number[], cellShape: number[] = [], integer = false): Column => ({ kind: 'numeric', values: Float64Array.from(values), cellShape, integer });
const text = (values: string[]): Column => ({ kind: 'string', values });

function table(columns: Record<string, Column>, rows: number): ColumnTable {
  return { source: 'site.parquet', rows, columns: new Map(Object.entries(columns)) };
}

const base: Pick<TaskDocument, 'loss' | 'labels' | 'input'> = { loss: 'cross_entropy', labels: ['no', 'yes'], input: { shape: [2], dtype: 'float32' } };

const failure = (run: () => unknown): DataError => thrownBy(DataError, run);

describe('columnsToExamples', () => {
  const people = table(
    {
      age: numeric([30, 40, 50]),
      income: numeric([1, 2, 3]),
      city: text(['lyon', 'paris', 'lyon']),
      visits: numeric([0, 4, 2], [], true),
      outcome: text(['yes', 'no', 'yes']),
      a: numeric([1, 0, 1]),
      b: numeric([0, 0, 1]),
      price: numeric([1.5, -2, 3.25]),
    },
    3,
  );

  it('maps numeric columns, a string column through the vocabulary and an id column to named inputs', () => {
    const examples = columnsToExamples(people, {
      ...base,
      inputs: [
        { name: 'numeric', columns: ['age', 'income'], dtype: 'float32', shape: [2] },
        { name: 'city', column: 'city', dtype: 'int64', shape: [], vocabulary: ['paris', 'lyon'] },
        { name: 'visits', column: 'visits', dtype: 'int64', shape: [] },
      ],
      target: { column: 'outcome' },
    });
    expect(examples.count).toBe(3);
    expect([...examples.inputs.keys()]).toEqual(['numeric', 'city', 'visits']);
    expect(examples.inputs.get('numeric')?.values).toEqual(Float32Array.of(30, 1, 40, 2, 50, 3));
    expect(examples.inputs.get('city')?.values).toEqual(BigInt64Array.of(1n, 0n, 1n));
    expect(examples.inputs.get('visits')?.values).toEqual(BigInt64Array.of(0n, 4n, 2n));
    expect(examples.labels).toEqual(Int32Array.of(1, 0, 1));
  });

  it('reads multi-hot targets from several columns and real targets for regression', () => {
    const inputs = [{ name: 'x', columns: ['age', 'income'], dtype: 'float32' as const, shape: [2] }];
    const multi = columnsToExamples(people, { ...base, loss: { kind: 'binary_cross_entropy' }, labels: ['a', 'b'], inputs, target: { columns: ['a', 'b'] } });
    expect(multi.targets).toEqual(Float32Array.of(1, 0, 0, 0, 1, 1));
    expect(multi.targetSize).toBe(2);
    const regression = columnsToDataset(people, { ...base, loss: { kind: 'mse' }, labels: ['price'], inputs, target: { column: 'price' } });
    expect(regression.targets).toEqual(Float32Array.of(1.5, -2, 3.25));
    expect(regression.features).toEqual(Float32Array.of(30, 1, 40, 2, 50, 3));
    expect(regression.count).toBe(3);
  });

  it('without an inputs mapping takes every numeric column but the target, as the single input', () => {
    const simple = table({ f1: numeric([1, 2]), f2: numeric([3, 4]), label: numeric([1, 0], [], true) }, 2);
    const dataset = columnsToDataset(simple, base);
    expect(dataset.features).toEqual(Float32Array.of(1, 3, 2, 4));
    expect(dataset.labels).toEqual(Int32Array.of(1, 0));
    expect(dataset.exampleShape).toEqual([2]);
  });

  it('takes an image column as one input', () => {
    const images = table({ pixels: numeric([0, 1, 2, 3, 4, 5, 6, 7], [1, 2, 2]), label: numeric([0, 1], [], true) }, 2);
    const dataset = columnsToDataset(images, { ...base, input: { shape: [1, 2, 2], dtype: 'float32' } });
    expect(dataset.exampleShape).toEqual([1, 2, 2]);
    expect(dataset.features).toEqual(Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]));
  });

  it.each([
    [
      'a word outside the vocabulary',
      () => columnsToExamples(people, { ...base, inputs: [{ name: 'city', column: 'city', dtype: 'int64', shape: [], vocabulary: ['paris'] }], target: { column: 'outcome' } }),
      /site\.parquet, row 0, column 'city': "lyon" is not in the vocabulary of input 'city'/,
    ],
    [
      'an id beyond the vocabulary',
      () => columnsToExamples(people, { ...base, inputs: [{ name: 'v', column: 'visits', dtype: 'int64', shape: [], vocabulary: ['a', 'b', 'c'] }], target: { column: 'outcome' } }),
      /row 1, column 'visits': id 4 is out of range; input 'v' expects integers in \[0, 2\]/,
    ],
    [
      'a negative or fractional id',
      () => columnsToExamples(people, { ...base, inputs: [{ name: 'p', column: 'price', dtype: 'int64', shape: [] }], target: { column: 'outcome' } }),
      /row 0, column 'price': id 1\.5 is out of range/,
    ],
    [
      'a text column used as numbers',
      () => columnsToExamples(people, { ...base, inputs: [{ name: 'x', columns: ['age', 'city'], dtype: 'float32', shape: [2] }], target: { column: 'outcome' } }),
      /column 'city': holds text .*expects numbers/,
    ],
    ['a missing column', () => columnsToExamples(people, { ...base, inputs: [{ name: 'x', columns: ['age', 'weight'], dtype: 'float32', shape: [2] }] }), /reads column 'weight', which the file lacks/],
    ['an unknown class name', () => columnsToExamples(people, { ...base, labels: ['yes', 'maybe'], inputs: [{ name: 'x', columns: ['age', 'income'], dtype: 'float32', shape: [2] }], target: { column: 'outcome' } }), /row 1, column 'outcome': class "no" is not among the task's labels/],
    [
      'a multi-label value that is not 0 or 1',
      () => columnsToExamples(people, { ...base, loss: { kind: 'binary_cross_entropy' }, labels: ['a', 'v'], inputs: [{ name: 'x', columns: ['age', 'income'], dtype: 'float32', shape: [2] }], target: { columns: ['a', 'visits'] } }),
      /row 1, column 'visits': 4; a multi-label target is 0 or 1/,
    ],
    [
      'a class index out of range',
      () => columnsToExamples(people, { ...base, inputs: [{ name: 'x', columns: ['age', 'income'], dtype: 'float32', shape: [2] }], target: { column: 'visits' } }),
      /row 1, column 'visits': class index 4; expected an integer in \[0, 1\]/,
    ],
  ])('rejects %s, naming where', (_what, run, pattern) => {
    expect(failure(run).message).toMatch(pattern);
  });

  it('gives a task with several inputs and int64 ids a Dataset of named inputs, and subset keeps them', () => {
    const dataset = columnsToDataset(people, {
      ...base,
      inputs: [
        { name: 'numeric', columns: ['age', 'income'], dtype: 'float32', shape: [2] },
        { name: 'city', column: 'city', dtype: 'int64', shape: [], vocabulary: ['paris', 'lyon'] },
      ],
      target: { column: 'outcome' },
    });
    expect(dataset.count).toBe(3);
    expect(dataset.features.length).toBe(0);
    expect(dataset.inputs?.map((input) => [input.name, input.dtype, input.shape])).toEqual([['numeric', 'float32', [2]], ['city', 'int64', []]]);
    expect(dataset.inputs?.[1]?.values).toEqual(BigInt64Array.of(1n, 0n, 1n));
    const part = subset(dataset, [2, 0]);
    expect(part.inputs?.[0]?.values).toEqual(Float32Array.of(50, 3, 30, 1));
    expect(part.inputs?.[1]?.values).toEqual(BigInt64Array.of(1n, 1n));
    expect(part.labels).toEqual(Int32Array.of(1, 1));
  });

  it('rejects a non-finite cell naming its row', () => {
    const bad = table({ f: numeric([1, Number.NaN]), label: numeric([0, 1]) }, 2);
    expect(failure(() => columnsToDataset(bad, { ...base, input: { shape: [1], dtype: 'float32' } })).message).toMatch(/site\.parquet, row 1, column 'f': NaN; expected a finite number/);
  });
});
