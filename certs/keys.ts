/**
 * Key pairs for the CA and the leaf certificates. node:crypto generates them (OpenSSL, off the main
 * thread) because node-forge's pure-JS prime search takes seconds per key; forge only signs.
 */
import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

/** RSA-2048: what DESIGN.md's RSA-PSS round signatures and TLS 1.3 both accept. */
export const RSA_MODULUS_BITS = 2048;

export interface KeyPairPem {
  /** SubjectPublicKeyInfo, PEM ("BEGIN PUBLIC KEY"). */
  readonly publicKeyPem: string;
  /** PKCS#8, unencrypted PEM ("BEGIN PRIVATE KEY"); written to disk with mode 0600 only. */
  readonly privateKeyPem: string;
}

export async function generateRsaKeyPair(): Promise<KeyPairPem> {
  const { publicKey, privateKey } = await generateKeyPairAsync('rsa', {
    modulusLength: RSA_MODULUS_BITS,
    publicExponent: 0x10001,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
}
