/**
 * Peer-supplied text on its way to an operator's terminal (cli/terminal-text.ts): terminal escapes
 * (erase line, cursor moves, window title, 8-bit CSI), carriage returns and newlines that would forge
 * table rows, and Unicode characters that reorder or hide text are all shown escaped; printable text,
 * including non-ASCII letters, passes unchanged; JSON output stays the same JSON value.
 */
import { describe, expect, it } from 'vitest';
import { participantsText, revocationText, eventText } from '../../../cli/commands/admin-format.js';
import { createOutput } from '../../../cli/output.js';
import { jsonSafe, terminalSafe } from '../../../cli/terminal-text.js';
import type { Participant, RevokeParticipantResponse, RoundEventMessage } from '../../../proto/admin-messages.js';

/** Any character a terminal or a bidi-aware renderer acts on. */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

const ATTACKS: readonly [string, string, string][] = [
  ['line erase and cursor home', 'cpu\x1b[2K\x1b[H', 'cpu\\u{1b}[2K\\u{1b}[H'],
  ['window title (OSC 0, BEL)', '\x1b]0;owned\x07', '\\u{1b}]0;owned\\u{7}'],
  ['carriage return overwriting the line', 'site-9\rsite-1', 'site-9\\u{d}site-1'],
  ['a newline forging a table row', '0.1.0\nsite-1  FF', '0.1.0\\u{a}site-1  FF'],
  ['8-bit CSI (C1)', 'x\u009b31m', 'x\\u{9b}31m'],
  ['right-to-left override', 'cpu\u202egpu', 'cpu\\u{202e}gpu'],
  ['zero-width space and BOM', 'c\u200bp\ufeffu', 'c\\u{200b}p\\u{feff}u'],
  ['DEL and backspace', 'ab\x7f\x08c', 'ab\\u{7f}\\u{8}c'],
];

describe('terminalSafe', () => {
  it.each(ATTACKS)('escapes %s', (_case, text, expected) => {
    expect(terminalSafe(text)).toBe(expected);
    expect(UNSAFE.test(terminalSafe(text))).toBe(false);
  });

  it('passes printable text, non-ASCII letters included, unchanged', () => {
    expect(terminalSafe('Hôpital Zürich – site 7 (東京)')).toBe('Hôpital Zürich – site 7 (東京)');
  });

  it('keeps newlines only when asked, and still escapes everything else', () => {
    expect(terminalSafe('line 1\nline 2\x1b[2J', { keepNewlines: true })).toBe('line 1\nline 2\\u{1b}[2J');
  });
});

describe('jsonSafe', () => {
  it('escapes what JSON.stringify leaves raw, and the value parses back unchanged', () => {
    const value = { device: 'x\u009b31m\u202e\u2028\x7f', version: '\x1b]0;t\x07' };
    const json = jsonSafe(JSON.stringify(value));
    expect(UNSAFE.test(json)).toBe(false);
    expect(JSON.parse(json)).toEqual(value);
  });

  it('is what --json prints', () => {
    let written = '';
    createOutput(true, { write: (chunk: string) => ((written += chunk), true) } as unknown as NodeJS.WritableStream).result('', { device: 'cpu\u009b2J' });
    expect(written).toBe('{"device":"cpu\\u009b2J"}\n');
  });
});

describe('the operator commands print peer strings escaped', () => {
  const hostile: Participant = {
    siteId: 'site-1\x1b[1A\x1b[2K',
    certificateSerial: 'AB\rCD',
    connectedAtUnixMs: 0,
    device: '\x1b]0;pwned\x07cpu',
    fedgateVersion: '0.1.0\u202e',
    certificateNotAfterUnixMs: 0,
  };

  it('fedgate participants: one row per site, no escape sequence, columns aligned on the escaped text', () => {
    const text = participantsText([hostile, { ...hostile, siteId: 'site-2', device: 'cpu', fedgateVersion: '0.1.0', certificateSerial: 'EF' }]);
    expect(UNSAFE.test(text.replaceAll('\n', ''))).toBe(false);
    expect(text.split('\n')).toHaveLength(3);
    expect(text).toContain('site-1\\u{1b}[1A\\u{1b}[2K');
    expect(text).toContain('\\u{1b}]0;pwned\\u{7}cpu');
  });

  it('fedgate watch and fedgate certs revoke', () => {
    const event = { type: 'ROUND_EVENT_ABORTED', roundId: null, participants: ['a\x1b[2J'], survivors: [], abortReason: 'X\x1b[2J', atUnixMs: 0, seconds: 1 } as unknown as RoundEventMessage;
    const revoked = { revoked: [{ certificateSerial: 'AB', commonName: 'site\x1b[2J', role: 'participant', revokedAtUnixMs: 0, alreadyRevoked: false }], crlNumber: 2, closedSessions: ['s\x07'] } as unknown as RevokeParticipantResponse;
    for (const text of [eventText(event), eventText({ ...event, type: 'ROUND_EVENT_STARTED' }), revocationText(revoked)]) {
      expect(UNSAFE.test(text.replaceAll('\n', ''))).toBe(false);
    }
  });
});
