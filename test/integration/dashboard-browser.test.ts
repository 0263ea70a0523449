/**
 * `fedgate dashboard` in a real browser: Debian's Chromium driven by playwright-core (never a browser
 * playwright downloads) opens the dashboard of a running federation (a coordinator and two sites, three
 * secure rounds) before the first round starts, and
 * - sees each round appear as committed within 2 s of the coordinator's commit event;
 * - reads the charts' data points (Chart.getChart) and finds them equal to ListRounds' figures;
 * - shows the participants, the ledger's height, head hash and check, and each live round's stage bar;
 * - clicks export and receives the ONNX model whose SHA-256 is ListRounds' onnx_sha256 for that round and
 *   that of the model exported offline from the ledger in the state directory;
 * - shows a clear message when the operator certificate is revoked, and when the coordinator goes away.
 * Screenshots are saved to test-artifacts/ (gitignored): dashboard.png, dashboard-revoked.png,
 * dashboard-unreachable.png.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard, type Dashboard } from '../../cli/dashboard/dashboard.js';
import { exportModelFromState } from '../../coordinator/federation/model-export.js';
import type { CommittedRound } from '../../proto/admin-messages.js';
import { createAdminFederation, LOGREG_DIGITS_TASK, type AdminFederation, type Credentials } from '../support/admin-federation.js';
import { CHROMIUM_BINARY, checkSystemDependency, systemDependencies } from '../support/system-deps.js';

const browserCheck = checkSystemDependency(systemDependencies.chromium);
const ROUNDS = 3;
const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/**
 * The little of the page's globals the test's in-page functions use: this project compiles without DOM
 * types, and the page's CSP forbids eval, so in-page code is written as functions (which playwright
 * hands to the page without eval) over this shape.
 */
interface PageGlobals {
  readonly document: {
    querySelectorAll(selector: string): { readonly length: number };
    getElementById(id: string): { readonly textContent: string | null } | null;
  };
  readonly Chart: { getChart(canvas: unknown): { data: { labels: unknown[]; datasets: { data: unknown[] }[] } } | undefined };
}

async function bannerState(page: Page, state: string, timeoutMs = 20_000): Promise<string> {
  await page.waitForSelector(`#connection[data-state="${state}"]`, { timeout: timeoutMs });
  return (await page.textContent('#connection')) ?? '';
}

/** The data points of a Chart.js chart, as the page holds them. */
async function chartPoints(page: Page, canvasId: string): Promise<{ labels: unknown[]; data: unknown[] }> {
  return page.evaluate((id) => {
    const page = globalThis as unknown as PageGlobals;
    const chart = page.Chart.getChart(page.document.getElementById(id));
    return { labels: [...(chart?.data.labels ?? [])], data: [...(chart?.data.datasets[0]?.data ?? [])] };
  }, canvasId);
}

describe.skipIf(browserCheck.skip)(`fedgate dashboard in Chromium ${browserCheck.reason}`, () => {
  let h: AdminFederation;
  let dashboard: Dashboard;
  let browser: Browser;
  let page: Page;
  let ledgerRounds: CommittedRound[];
  const committedAt = new Map<number, number>();
  const seenAt = new Map<number, number>();

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    h = await createAdminFederation(2);
    await h.startCoordinator({ rounds: ROUNDS, minParticipants: 2 });
    h.coordinator.federation.on('round', (event) => {
      if (event.type === 'round_committed' && event.sequence !== undefined) committedAt.set(event.sequence, Date.now());
    });
    dashboard = await startDashboard({
      connection: { address: h.address(), caPem: h.caPem, certPem: h.operator.certPem, keyPem: h.operator.keyPem },
      listen: '127.0.0.1:0',
      feed: { retry: { initialMs: 250, maxMs: 1000 }, pollMs: 1000 },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM_BINARY, args: ['--no-sandbox', '--headless=new'] });
    page = await browser.newPage({ acceptDownloads: true, viewport: { width: 1400, height: 1100 } });
    // The moment each committed row is in the page, reported to this process (one clock for both sides).
    await page.exposeFunction('fedgateRowSeen', (sequence: string) => {
      if (!seenAt.has(Number(sequence))) seenAt.set(Number(sequence), Date.now());
    });
    await page.addInitScript({
      content: `document.addEventListener('DOMContentLoaded', () => {
        const body = document.querySelector('#rounds tbody');
        new MutationObserver(() => {
          for (const row of body.querySelectorAll('tr[data-outcome="committed"]')) window.fedgateRowSeen(row.dataset.sequence);
        }).observe(body, { childList: true });
      });`,
    });
    await page.goto(dashboard.url);
    await bannerState(page, 'live');
    // The page is open and live before the first round: start the sites now.
    h.startSite(0);
    h.startSite(1);
    await h.coordinator.done;
    await page.waitForFunction(
      (rounds) => {
        const { document } = globalThis as unknown as PageGlobals;
        return document.querySelectorAll('#rounds tr[data-outcome="committed"]').length === rounds && document.querySelectorAll('#rounds tr[data-outcome="open"]').length === 0;
      },
      ROUNDS,
      { timeout: 20_000 },
    );
    ledgerRounds = await h.operatorClient().rounds();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await dashboard?.close();
    await h?.close();
  });

  it('shows each round as committed within 2 s of its commit event', () => {
    expect([...committedAt.keys()].sort()).toEqual([1, 2, 3]);
    const latencies = [1, 2, 3].map((sequence) => (seenAt.get(sequence) ?? Number.POSITIVE_INFINITY) - (committedAt.get(sequence) as number));
    console.log(`dashboard: rows appeared ${latencies.map((ms) => `${ms} ms`).join(', ')} after the commit events of rounds 1-3`);
    for (const latency of latencies) expect(latency).toBeLessThan(2000);
  });

  it("draws the charts with ListRounds' figures: one point per committed round", async () => {
    expect(ledgerRounds.map((round) => round.sequence)).toEqual([1, 2, 3]);
    const loss = await chartPoints(page, 'loss-chart');
    const accuracy = await chartPoints(page, 'accuracy-chart');
    expect(loss.labels).toEqual([1, 2, 3]);
    expect(loss.data).toEqual(ledgerRounds.map((round) => round.metrics?.evalLoss));
    expect(accuracy.labels).toEqual([1, 2, 3]);
    expect(accuracy.data).toEqual(ledgerRounds.map((round) => round.metrics?.evalAccuracy));
    for (const value of accuracy.data) expect(value).toBeGreaterThan(0);
    // A class-label task: the evaluation figure is the accuracy (a regression task would show R^2, dashboard-state.test.ts).
    expect(await page.textContent('#evaluation-caption')).toBe('Federated evaluation accuracy per round');
    expect(await page.textContent('#evaluation-header')).toBe('accuracy');
    console.log(`dashboard charts: loss ${JSON.stringify(loss.data)}, accuracy ${JSON.stringify(accuracy.data)} (ListRounds: the same)`);
  });

  it('shows the timeline with stage durations, the participants and the ledger', async () => {
    for (const round of ledgerRounds) {
      const row = `#rounds tr[data-sequence="${round.sequence}"]`;
      expect(await page.getAttribute(row, 'data-outcome')).toBe('committed');
      // Seen live: every stage of the round has its part of the bar.
      expect(await page.$$eval(`${row} .stagebar span`, (parts) => parts.map((part) => part.getAttribute('data-stage')))).toEqual([
        'advertise_keys',
        'nonce_reveal',
        'share_keys',
        'masked_input',
        'consistency_check',
        'unmask',
        'commit',
      ]);
      expect(await page.textContent(`${row} td.accuracy`)).toBe(`${(100 * (round.metrics?.evalAccuracy ?? 0)).toFixed(1)}%`);
    }
    expect(await page.$$eval('#participants tbody tr', (rows) => rows.map((row) => [...row.querySelectorAll('td')].map((cell) => cell.textContent ?? '')))).toEqual([
      ['site-1', expect.stringMatching(/^connected since /), expect.any(String), '3', '3', expect.stringMatching(/^valid to /), 'cpu'],
      ['site-2', expect.stringMatching(/^connected since /), expect.any(String), '3', '3', expect.stringMatching(/^valid to /), 'cpu'],
    ]);
    expect(await page.textContent('#ledger-height')).toBe('3');
    expect(await page.textContent('#ledger-head')).toBe(ledgerRounds.at(-1)?.recordHash.toString('hex'));
    expect(await page.getAttribute('#ledger-verification', 'data-ok')).toBe('true');
    expect(await page.textContent('#ledger-verification')).toContain('rounds 1..3: contiguous');
    expect(await page.textContent('#rounds-committed')).toBe('3 of 3 committed');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  });

  it("exports a committed round's model whose SHA-256 matches the ledger's", async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#rounds tr[data-sequence="2"] button.export')]);
    expect(download.suggestedFilename()).toBe('admin-test-round-2.onnx');
    const bytes = await readFile(await download.path());
    const fromLedger = await exportModelFromState(h.stateDirectory, LOGREG_DIGITS_TASK, undefined, 2);
    expect(fromLedger.modelHash).toBe(ledgerRounds[1]?.modelHash.toString('hex'));
    expect(sha256(bytes)).toBe(ledgerRounds[1]?.onnxSha256.toString('hex'));
    expect(sha256(bytes)).toBe(sha256(fromLedger.onnx));
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).document.getElementById('export-status')?.textContent?.startsWith('round 2 exported') === true);
    console.log(`dashboard export: round 2, ${bytes.length} bytes, sha256 ${sha256(bytes)} = ListRounds onnx_sha256 = offline export of ledger model ${fromLedger.modelHash.slice(0, 16)}...`);
  });

  it('marks a revoked participant as revoked and no longer connected', async () => {
    const revocation = await h.operatorClient().revoke({ siteId: 'site-2' });
    const serial = revocation.revoked[0]?.certificateSerial ?? '';
    expect(serial).toBe(h.sites[1]?.serial);
    await page.waitForSelector('#participants tr[data-site="site-2"] .badge.revoked', { timeout: 10_000 });
    expect(await page.$$eval('#participants tr[data-site="site-2"] td', (cells) => cells.map((cell) => cell.textContent ?? ''))).toEqual(['site-2', 'no', expect.any(String), '3', '3', `REVOKED ${serial}`, 'cpu']);
    expect(await page.textContent('#revoked-count')).toBe('1 certificate(s) revoked');
    expect(await page.textContent('#participants tr[data-site="site-1"] td:nth-child(2)')).toMatch(/^connected since /);
  });

  it('says so when the operator certificate is revoked', async () => {
    const wallScreen: Credentials = await h.issue('operator', 'wall-screen');
    const second = await startDashboard({
      connection: { address: h.address(), caPem: h.caPem, certPem: wallScreen.certPem, keyPem: wallScreen.keyPem },
      listen: '127.0.0.1:0',
      feed: { retry: { initialMs: 250, maxMs: 1000 } },
    });
    const other = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    try {
      await other.goto(second.url);
      await bannerState(other, 'live');
      await h.operatorClient().revoke({ serial: wallScreen.serial });
      const message = await bannerState(other, 'revoked');
      expect(message).toContain("the coordinator refused the dashboard's operator certificate: it has been revoked");
      expect(message).toContain(`certificate serial ${wallScreen.serial} of operator wall-screen has been revoked`);
      expect(message).toContain('fedgate certs issue operator NAME');
      await other.screenshot({ path: join(ARTIFACTS, 'dashboard-revoked.png') });
    } finally {
      await other.close();
      await second.close();
    }
  });

  it('says so when the coordinator cannot be reached', async () => {
    const address = h.address();
    await h.coordinator.stop();
    await page.waitForFunction((text) => (globalThis as unknown as PageGlobals).document.getElementById('connection')?.textContent?.includes(text) === true, `cannot reach the coordinator at ${address}`, {
      timeout: 20_000,
    });
    const message = (await page.textContent('#connection')) ?? '';
    expect(await page.getAttribute('#connection', 'data-state')).toBe('unreachable');
    expect(message).toMatch(/UNAVAILABLE.*retrying in \d+(\.\d+)? s$/);
    // What was shown stays on the page.
    expect(await page.$$eval('#rounds tr[data-outcome="committed"]', (rows) => rows.length)).toBe(ROUNDS);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-unreachable.png') });
  });
});
