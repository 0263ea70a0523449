/** Refused TLS handshakes are logged at most once per client address and problem per window, with a count of what was left out. */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { HandshakeFailureLog } from '../../../coordinator/service/handshake-log.js';
import type { HandshakeFailure } from '../../../proto/handshake-failures.js';

const failure = (peerHost: string, problem: HandshakeFailure['problem'], port = 40000): HandshakeFailure => ({ peer: `${peerHost}:${port}`, peerHost, problem, detail: `detail of ${problem}` });

describe('the handshake failure log', () => {
  it('rate-limits per address and problem', () => {
    const lines: Record<string, unknown>[] = [];
    let now = 0;
    const log = new HandshakeFailureLog(pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) }), 60_000, () => now);
    for (let attempt = 0; attempt < 20; attempt++) {
      log.report(failure('10.1.1.1', 'client-closed', 40000 + attempt));
      now += 1000;
    }
    log.report(failure('10.1.1.1', 'client-certificate-untrusted'));
    log.report(failure('10.2.2.2', 'client-closed'));
    expect(lines.map((line) => [line['msg'], line['peer'], line['problem']])).toEqual([
      ['TLS handshake refused', '10.1.1.1:40000', 'client-closed'],
      ['TLS handshake refused', '10.1.1.1:40000', 'client-certificate-untrusted'],
      ['TLS handshake refused', '10.2.2.2:40000', 'client-closed'],
    ]);
    now += 60_000;
    log.report(failure('10.1.1.1', 'client-closed', 41000));
    expect(lines.at(-1)).toMatchObject({ peer: '10.1.1.1:41000', problem: 'client-closed', detail: 'detail of client-closed', similarNotLogged: 19 });
  });
});
