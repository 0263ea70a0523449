/**
 * The one byte order of uint32 vectors on the wire (crypto/secagg/vector-bytes.ts) and the stage names
 * defined once (crypto/secagg/stages.ts), whose signature labels are part of every signed transcript.
 */
import { describe, expect, it } from 'vitest';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import { CLIENT_STAGES, SERVER_STAGES, SIGNED_STAGE, STAGE } from '../../../../crypto/secagg/stages.js';
import { uploadBytes } from '../../../../crypto/secagg/transcript.js';
import { vectorFromLittleEndianBytes, vectorToLittleEndianBytes } from '../../../../crypto/secagg/vector-bytes.js';

describe('uint32 vectors on the wire', () => {
  const vector = Uint32Array.of(0x01020304, 0, 0xffffffff, 0x80000001);
  const littleEndian = [4, 3, 2, 1, 0, 0, 0, 0, 255, 255, 255, 255, 1, 0, 0, 0x80];

  it('are their elements little-endian, and uploadBytes is exactly that', () => {
    expect([...vectorToLittleEndianBytes(vector)]).toEqual(littleEndian);
    expect([...uploadBytes(vector)]).toEqual(littleEndian);
    // Of a view, only the viewed elements.
    expect([...vectorToLittleEndianBytes(vector.subarray(1, 2))]).toEqual([0, 0, 0, 0]);
  });

  it('read back into a fresh aligned vector from any offset', () => {
    const shared = new Uint8Array(littleEndian.length + 1);
    shared.set(littleEndian, 1);
    const decoded = vectorFromLittleEndianBytes(shared.subarray(1), vector.length);
    expect(decoded).toEqual(vector);
    expect(decoded.buffer).not.toBe(shared.buffer);
    expect(vectorFromLittleEndianBytes(new Uint8Array(0))).toEqual(new Uint32Array(0));
  });

  it('refuse bytes of the wrong length, naming both lengths', () => {
    const bytes = Uint8Array.from(littleEndian);
    expect(() => vectorFromLittleEndianBytes(bytes, 5)).toThrow(SecAggError);
    expect(() => vectorFromLittleEndianBytes(bytes, 5)).toThrow('a vector of 5 uint32 is 20 bytes, got 16');
    expect(() => vectorFromLittleEndianBytes(bytes.subarray(0, 7))).toThrow('a uint32 vector is a multiple of 4 bytes long, got 7');
  });
});

describe('stage names', () => {
  it('keep the signature labels every signed transcript starts with (renaming one breaks old signatures)', () => {
    expect(SIGNED_STAGE).toEqual({
      advertiseKeys: 'advertise_keys',
      keyList: 'key_list',
      shareKeys: 'share_keys',
      maskedInput: 'masked_input',
      consistencyCheck: 'consistency_check',
      unmask: 'unmask',
      commit: 'commit',
    });
  });

  it('split into what sites send and what the coordinator sends, each name once', () => {
    expect([...CLIENT_STAGES, ...SERVER_STAGES].sort()).toEqual(Object.values(STAGE).sort());
    expect(new Set(Object.values(STAGE)).size).toBe(Object.values(STAGE).length);
  });
});
