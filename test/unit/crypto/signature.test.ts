import { describe, expect, it } from 'vitest';
import { constants, generateKeyPairSync, verify as nodeVerify } from 'node:crypto';
import { CryptoError, canonicalMessage, encodeFields, sha256, signMessage, toHex, utf8, verifyMessage } from '../../../crypto/index.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const roundId = Uint8Array.from({ length: 24 }, (_, i) => 200 - i);
const configHash = sha256(utf8('round config'));

describe('RSA-PSS signatures', () => {
  const message = canonicalMessage('advertise_keys', 'fed-1', roundId, configHash, [utf8('c_pk'), utf8('s_pk')]);
  const signature = signMessage(privateKey, message);

  it('verifies its own signature, is randomised, and uses PSS with SHA-256 and a 32-byte salt', () => {
    expect(signature.length).toBe(256);
    expect(verifyMessage(publicKey, message, signature)).toBe(true);
    expect(toHex(signMessage(privateKey, message))).not.toBe(toHex(signature));
    const pss = { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
    expect(nodeVerify('sha256', message, pss, signature)).toBe(true);
    // A verifier expecting another salt length rejects it: the salt length is part of the scheme.
    expect(nodeVerify('sha256', message, { ...pss, saltLength: 20 }, signature)).toBe(false);
  });

  it('fails when any byte of the message changes', () => {
    for (let i = 0; i < message.length; i++) {
      const changed = message.slice();
      changed[i] = (changed[i] as number) ^ 0x01;
      expect(verifyMessage(publicKey, changed, signature)).toBe(false);
    }
    expect(verifyMessage(publicKey, message.subarray(0, message.length - 1), signature)).toBe(false);
  });

  it('fails when any byte of the signature changes, or it is truncated, or it is empty', () => {
    for (let i = 0; i < signature.length; i++) {
      const changed = signature.slice();
      changed[i] = (changed[i] as number) ^ 0x40;
      expect(verifyMessage(publicKey, message, changed)).toBe(false);
    }
    expect(verifyMessage(publicKey, message, signature.subarray(1))).toBe(false);
    expect(verifyMessage(publicKey, message, new Uint8Array(0))).toBe(false);
  });

  it('refuses a signature whose leading zero byte was dropped (RFC 8017: exactly modulus-length bytes)', () => {
    // One signature in 256 starts with 0x00; OpenSSL alone would also accept it without that byte.
    let leadingZero: Uint8Array | undefined;
    for (let attempt = 0; attempt < 4096 && leadingZero === undefined; attempt++) {
      const candidate = signMessage(privateKey, message);
      if (candidate[0] === 0) leadingZero = candidate;
    }
    if (leadingZero === undefined) throw new Error('no signature with a leading zero byte in 4096 tries');
    expect(verifyMessage(publicKey, message, leadingZero)).toBe(true);
    const pss = { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
    expect(nodeVerify('sha256', message, pss, leadingZero.subarray(1))).toBe(true);
    expect(verifyMessage(publicKey, message, leadingZero.subarray(1))).toBe(false);
    const padded = new Uint8Array(257);
    padded.set(signature, 1);
    expect(verifyMessage(publicKey, message, padded)).toBe(false);
  });

  it('fails under another key', () => {
    expect(verifyMessage(other.publicKey, message, signature)).toBe(false);
  });
});

describe('canonicalMessage', () => {
  it('is encodeFields of the labelled stage, federation, round, config hash and fields', () => {
    const fields = [utf8('x'), new Uint8Array(0)];
    expect(toHex(canonicalMessage('commit', 'fed', roundId, configHash, fields))).toBe(
      toHex(encodeFields([utf8('fedgate/v1/commit'), utf8('fed'), roundId, configHash, ...fields])),
    );
  });

  it('distinguishes stage, federation id, round id, config hash and field boundaries', () => {
    const base = (overrides: Partial<{ stage: string; federation: string; round: Uint8Array; hash: Uint8Array; fields: Uint8Array[] }>) =>
      toHex(
        canonicalMessage(
          overrides.stage ?? 'share_keys',
          overrides.federation ?? 'fed',
          overrides.round ?? roundId,
          overrides.hash ?? configHash,
          overrides.fields ?? [utf8('ab'), utf8('c')],
        ),
      );
    const variants = [
      base({}),
      base({ stage: 'masked_input' }),
      base({ federation: 'fee' }),
      base({ round: roundId.slice(1) }),
      base({ hash: sha256(utf8('another config')) }),
      base({ fields: [utf8('a'), utf8('bc')] }),
      base({ fields: [utf8('abc')] }),
      base({ fields: [utf8('ab'), utf8('c'), new Uint8Array(0)] }),
    ];
    expect(new Set(variants).size).toBe(variants.length);
  });
});

describe('argument checks', () => {
  const message = utf8('m');
  const ed = generateKeyPairSync('ed25519');
  const cases: { name: string; run: () => unknown; reason: string; message: string }[] = [
    { name: 'sign with a public key', run: () => signMessage(publicKey, message), reason: 'INVALID_KEY', message: 'privateKey must be an RSA private KeyObject, got public rsa key' },
    { name: 'sign with an Ed25519 key', run: () => signMessage(ed.privateKey, message), reason: 'INVALID_KEY', message: 'got private ed25519 key' },
    { name: 'sign with a PEM string', run: () => signMessage('-----BEGIN' as never, message), reason: 'INVALID_KEY', message: 'got string' },
    { name: 'sign a string', run: () => signMessage(privateKey, 'm' as unknown as Uint8Array), reason: 'INVALID_BYTES', message: 'message' },
    { name: 'verify with a private key', run: () => verifyMessage(privateKey, message, message), reason: 'INVALID_KEY', message: 'publicKey must be an RSA public KeyObject' },
    { name: 'verify a missing signature', run: () => verifyMessage(publicKey, message, undefined as unknown as Uint8Array), reason: 'INVALID_BYTES', message: 'signature' },
    { name: 'stage with upper case', run: () => canonicalMessage('Commit', 'fed', roundId, configHash, []), reason: 'INVALID_STAGE', message: '"Commit"' },
    { name: 'empty stage', run: () => canonicalMessage('', 'fed', roundId, configHash, []), reason: 'INVALID_STAGE', message: 'stage' },
    { name: 'empty federation id', run: () => canonicalMessage('commit', '', roundId, configHash, []), reason: 'INVALID_FEDERATION_ID', message: 'federationId' },
    { name: 'empty round id', run: () => canonicalMessage('commit', 'fed', new Uint8Array(0), configHash, []), reason: 'INVALID_LENGTH', message: 'roundId must not be empty' },
    { name: 'short config hash', run: () => canonicalMessage('commit', 'fed', roundId, configHash.subarray(1), []), reason: 'INVALID_LENGTH', message: 'roundConfigHash must be 32 bytes long, got 31' },
    { name: 'fields not an array', run: () => canonicalMessage('commit', 'fed', roundId, configHash, utf8('x') as unknown as Uint8Array[]), reason: 'INVALID_FIELDS', message: 'fields must be an array' },
    { name: 'a field not bytes', run: () => canonicalMessage('commit', 'fed', roundId, configHash, ['x' as unknown as Uint8Array]), reason: 'INVALID_BYTES', message: 'fields[0] must be a Uint8Array' },
  ];
  it.each(cases)('$name', ({ run, reason, message: expected }) => {
    let caught: unknown;
    try {
      run();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CryptoError);
    expect(caught).toMatchObject({ code: 'INVALID_ARGUMENT', reason });
    expect((caught as CryptoError).message).toContain(expected);
  });
});
