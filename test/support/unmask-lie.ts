import type { UnmaskResponseMessage } from '../../crypto/secagg/messages.js';
import { keyListHash, revealDigest, roundContext, survivorDigest, unmaskTranscript } from '../../crypto/secagg/transcript.js';
import { signMessage } from '../../crypto/signature.js';
import type { RoundDriver, TestFederation } from './secagg-sim.js';

/**
 * `holder`'s Unmask answer with its share of `dealer` changed (by `flip` in one byte of y) and re-signed
 * with the holder's own key: a lying holder whose signature verifies.
 */
export function lyingUnmaskAnswer(
  driver: RoundDriver,
  federation: TestFederation,
  holder: string,
  message: UnmaskResponseMessage,
  dealer: string,
  flip: number,
): UnmaskResponseMessage {
  const shares = message.shares.map((share) => {
    if (share.dealer !== dealer) return share;
    const bytes = new Uint8Array(share.share);
    bytes[5] = (bytes[5] as number) ^ flip;
    return { ...share, share: bytes };
  });
  const summary = driver.server.summary();
  const transcript = unmaskTranscript(
    roundContext(driver.config),
    keyListHash(driver.keyList!.entries),
    survivorDigest(summary.sharesDealt),
    summary.maskedInputs,
    revealDigest(shares),
  );
  return { ...message, shares, signature: signMessage(federation.site(holder).privateKey, transcript) };
}
