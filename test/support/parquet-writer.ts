/**
 * A minimal Parquet writer for tests (no Parquet writer is installed; pyarrow is not on the machine):
 * one row group, one uncompressed v1 data page per column, PLAIN values, definition levels for
 * optional columns as one bit-packed run. The metadata is Thrift's compact protocol, field numbers
 * from parquet-format's parquet.thrift (FileMetaData, SchemaElement, RowGroup, ColumnChunk,
 * ColumnMetaData, PageHeader, DataPageHeader). Enough to write the numeric, boolean, string, date and
 * binary columns the reader's tests need; not a general writer.
 */

export type ParquetTestColumn =
  | { name: string; type: 'BOOLEAN'; values: readonly (boolean | null)[] }
  | { name: string; type: 'INT32' | 'FLOAT' | 'DOUBLE'; values: readonly (number | null)[]; convertedType?: 'DATE' }
  | { name: string; type: 'INT64'; values: readonly (bigint | null)[] }
  | { name: string; type: 'STRING' | 'BINARY'; values: readonly (string | null)[] };

const PHYSICAL = { BOOLEAN: 0, INT32: 1, INT64: 2, FLOAT: 4, DOUBLE: 5, STRING: 6, BINARY: 6 } as const;
const CONVERTED_UTF8 = 0;
const CONVERTED_DATE = 6;

// Thrift compact protocol values.
type ThriftValue =
  | { t: 'i32'; v: number }
  | { t: 'i64'; v: bigint | number }
  | { t: 'bin'; v: Uint8Array | string }
  | { t: 'list'; elem: 'i32' | 'bin' | 'struct'; items: ThriftValue[] }
  | { t: 'struct'; fields: [number, ThriftValue][] };

const TYPE_CODE = { i32: 5, i64: 6, bin: 8, list: 9, struct: 12 } as const;

class ByteWriter {
  readonly bytes: number[] = [];
  byte(b: number): void {
    this.bytes.push(b & 0xff);
  }
  varint(value: bigint): void {
    let v = value;
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }
  zigzag(value: bigint | number): void {
    const v = BigInt(value);
    this.varint(v >= 0n ? v << 1n : (-v << 1n) - 1n);
  }
  raw(data: Uint8Array | readonly number[]): void {
    for (const b of data) this.byte(b);
  }
}

function writeThrift(out: ByteWriter, value: ThriftValue): void {
  switch (value.t) {
    case 'i32':
    case 'i64':
      out.zigzag(value.v);
      return;
    case 'bin': {
      const data = typeof value.v === 'string' ? new TextEncoder().encode(value.v) : value.v;
      out.varint(BigInt(data.length));
      out.raw(data);
      return;
    }
    case 'list':
      if (value.items.length < 15) out.byte((value.items.length << 4) | TYPE_CODE[value.elem]);
      else {
        out.byte(0xf0 | TYPE_CODE[value.elem]);
        out.varint(BigInt(value.items.length));
      }
      for (const item of value.items) writeThrift(out, item);
      return;
    case 'struct': {
      let last = 0;
      for (const [id, field] of value.fields) {
        const delta = id - last;
        if (delta > 0 && delta <= 15) out.byte((delta << 4) | TYPE_CODE[field.t]);
        else {
          out.byte(TYPE_CODE[field.t]);
          out.zigzag(id);
        }
        writeThrift(out, field);
        last = id;
      }
      out.byte(0); // STOP
    }
  }
}

const i32 = (v: number): ThriftValue => ({ t: 'i32', v });
const i64 = (v: number | bigint): ThriftValue => ({ t: 'i64', v });

function plainValues(column: ParquetTestColumn): Uint8Array {
  const present = (column.values as readonly unknown[]).filter((v) => v !== null);
  const out = new ByteWriter();
  const view = (size: number, write: (dv: DataView) => void): void => {
    const buffer = new Uint8Array(size);
    write(new DataView(buffer.buffer));
    out.raw(buffer);
  };
  switch (column.type) {
    case 'BOOLEAN': {
      const packed = new Uint8Array(Math.ceil(present.length / 8));
      present.forEach((v, i) => {
        if (v === true) packed[i >> 3] = (packed[i >> 3] as number) | (1 << (i & 7));
      });
      out.raw(packed);
      break;
    }
    case 'INT32':
      for (const v of present) view(4, (dv) => dv.setInt32(0, v as number, true));
      break;
    case 'FLOAT':
      for (const v of present) view(4, (dv) => dv.setFloat32(0, v as number, true));
      break;
    case 'DOUBLE':
      for (const v of present) view(8, (dv) => dv.setFloat64(0, v as number, true));
      break;
    case 'INT64':
      for (const v of present) view(8, (dv) => dv.setBigInt64(0, v as bigint, true));
      break;
    case 'STRING':
    case 'BINARY':
      for (const v of present) {
        const data = new TextEncoder().encode(v as string);
        view(4, (dv) => dv.setUint32(0, data.length, true));
        out.raw(data);
      }
  }
  return Uint8Array.from(out.bytes);
}

/** Definition levels (1 = present) as a 4-byte length and one bit-packed run of the RLE hybrid. */
function definitionLevels(values: readonly unknown[]): Uint8Array {
  const groups = Math.ceil(values.length / 8);
  const run = new ByteWriter();
  run.varint(BigInt((groups << 1) | 1));
  const packed = new Uint8Array(groups);
  values.forEach((v, i) => {
    if (v !== null) packed[i >> 3] = (packed[i >> 3] as number) | (1 << (i & 7));
  });
  run.raw(packed);
  const out = new Uint8Array(4 + run.bytes.length);
  new DataView(out.buffer).setUint32(0, run.bytes.length, true);
  out.set(run.bytes, 4);
  return out;
}

/** Encodes the columns (all of one length) as a Parquet file; a column holding a null is OPTIONAL. */
export function writeParquet(columns: readonly ParquetTestColumn[]): Uint8Array {
  const rows = columns[0]?.values.length ?? 0;
  const file = new ByteWriter();
  file.raw(new TextEncoder().encode('PAR1'));
  const chunks: ThriftValue[] = [];
  const schema: ThriftValue[] = [{ t: 'struct', fields: [[4, { t: 'bin', v: 'schema' }], [5, i32(columns.length)]] }];
  for (const column of columns) {
    const optional = (column.values as readonly unknown[]).includes(null);
    const values = plainValues(column);
    const levels = optional ? definitionLevels(column.values) : new Uint8Array(0);
    const pageData = new Uint8Array(levels.length + values.length);
    pageData.set(levels, 0);
    pageData.set(values, levels.length);
    const header = new ByteWriter();
    writeThrift(header, {
      t: 'struct',
      fields: [
        [1, i32(0)], // DATA_PAGE
        [2, i32(pageData.length)],
        [3, i32(pageData.length)],
        [5, { t: 'struct', fields: [[1, i32(rows)], [2, i32(0)], [3, i32(3)], [4, i32(3)]] }], // PLAIN values, RLE levels
      ],
    });
    const offset = file.bytes.length;
    file.raw(header.bytes);
    file.raw(pageData);
    const size = header.bytes.length + pageData.length;
    const physical = PHYSICAL[column.type];
    chunks.push({
      t: 'struct',
      fields: [
        [2, i64(offset)],
        [
          3,
          {
            t: 'struct',
            fields: [
              [1, i32(physical)],
              [2, { t: 'list', elem: 'i32', items: [i32(0), i32(3)] }],
              [3, { t: 'list', elem: 'bin', items: [{ t: 'bin', v: column.name }] }],
              [4, i32(0)], // UNCOMPRESSED
              [5, i64(rows)],
              [6, i64(size)],
              [7, i64(size)],
              [9, i64(offset)],
            ],
          },
        ],
      ],
    });
    const converted = column.type === 'STRING' ? CONVERTED_UTF8 : 'convertedType' in column && column.convertedType === 'DATE' ? CONVERTED_DATE : undefined;
    const element: [number, ThriftValue][] = [[1, i32(physical)], [3, i32(optional ? 1 : 0)], [4, { t: 'bin', v: column.name }]];
    if (converted !== undefined) element.push([6, i32(converted)]);
    schema.push({ t: 'struct', fields: element });
  }
  const metadata = new ByteWriter();
  writeThrift(metadata, {
    t: 'struct',
    fields: [
      [1, i32(1)],
      [2, { t: 'list', elem: 'struct', items: schema }],
      [3, i64(rows)],
      [4, { t: 'list', elem: 'struct', items: [{ t: 'struct', fields: [[1, { t: 'list', elem: 'struct', items: chunks }], [2, i64(file.bytes.length)], [3, i64(rows)]] }] }],
    ],
  });
  file.raw(metadata.bytes);
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, metadata.bytes.length, true);
  file.raw(length);
  file.raw(new TextEncoder().encode('PAR1'));
  return Uint8Array.from(file.bytes);
}
