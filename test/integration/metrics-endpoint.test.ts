/**
 * The metrics listener (platform/metrics-endpoint.ts) refuses what its config refuses: with `tls` it is
 * HTTPS only, so a plain HTTP request gets no answer; with `tls.clientCaPem` a client without a
 * certificate, or with one of another CA, gets no answer either. Without `tls` it is plain HTTP. Only
 * GET/HEAD /metrics is served.
 */
import { get as httpGet } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMetricsEndpoint, type MetricsEndpoint, type MetricsSource } from '../../platform/index.js';
import { createTestPki, type TestPki } from '../support/pki.js';

const source: MetricsSource = { contentType: 'text/plain; version=0.0.4; charset=utf-8', metrics: () => Promise.resolve('fedgate_test_total 7\n') };

function plain(url: string, method = 'GET'): Promise<{ status?: number; body?: string; error?: string }> {
  return new Promise((resolve) => {
    const request = httpGet(url, { method, timeout: 5000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ ...(response.statusCode === undefined ? {} : { status: response.statusCode }), body }));
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
  });
}

function secure(url: string, options: { ca: string; cert?: string; key?: string }): Promise<{ status?: number; body?: string; error?: string }> {
  return new Promise((resolve) => {
    const request = httpsRequest(url, { ...options, timeout: 5000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ ...(response.statusCode === undefined ? {} : { status: response.statusCode }), body }));
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
    request.end();
  });
}

describe('metrics endpoint', () => {
  let pki: TestPki;
  let foreignPki: TestPki;
  const endpoints: MetricsEndpoint[] = [];
  const start = async (options: Parameters<typeof startMetricsEndpoint>[0]): Promise<MetricsEndpoint> => {
    const endpoint = await startMetricsEndpoint(options, source);
    endpoints.push(endpoint);
    return endpoint;
  };

  beforeAll(async () => {
    [pki, foreignPki] = await Promise.all([createTestPki(), createTestPki('another CA')]);
  });

  afterAll(async () => {
    for (const endpoint of endpoints) await endpoint.close();
  });

  it('serves GET and HEAD /metrics over plain HTTP when no tls is configured, and nothing else', async () => {
    const endpoint = await start({ listen: '127.0.0.1:0' });
    expect(endpoint.url).toBe(`http://127.0.0.1:${endpoint.port}/metrics`);
    expect(await plain(endpoint.url)).toEqual({ status: 200, body: 'fedgate_test_total 7\n' });
    expect(await plain(endpoint.url, 'HEAD')).toEqual({ status: 200, body: '' });
    expect(await plain(endpoint.url, 'POST')).toMatchObject({ status: 405 });
    expect(await plain(endpoint.url.replace('/metrics', '/'))).toMatchObject({ status: 404, body: 'fedgate serves Prometheus metrics at /metrics\n' });
  });

  it('with tls: HTTPS only; a plain HTTP request gets no answer', async () => {
    const endpoint = await start({ listen: '127.0.0.1:0', tls: { certPem: pki.coordinator.certificatePem, keyPem: pki.coordinator.privateKeyPem } });
    expect(endpoint.url).toBe(`https://127.0.0.1:${endpoint.port}/metrics`);
    expect(await secure(endpoint.url, { ca: pki.ca.certificatePem })).toEqual({ status: 200, body: 'fedgate_test_total 7\n' });
    const refused = await plain(endpoint.url.replace('https:', 'http:'));
    expect(refused.status).toBeUndefined();
    expect(refused.error).toMatch(/ECONNRESET|HPE_|socket hang up|timeout/);
  });

  it('with tls.clientCaPem: a client without a certificate, or with one of another CA, gets no answer', async () => {
    const endpoint = await start({ listen: '127.0.0.1:0', tls: { certPem: pki.coordinator.certificatePem, keyPem: pki.coordinator.privateKeyPem, clientCaPem: pki.ca.certificatePem } });
    const scraper = await pki.operator('prometheus');
    const stranger = await foreignPki.operator('prometheus');
    expect(await secure(endpoint.url, { ca: pki.ca.certificatePem, cert: scraper.certificatePem, key: scraper.privateKeyPem })).toEqual({ status: 200, body: 'fedgate_test_total 7\n' });
    const anonymous = await secure(endpoint.url, { ca: pki.ca.certificatePem });
    expect(anonymous.status).toBeUndefined();
    expect(anonymous.error).toBeDefined();
    const foreign = await secure(endpoint.url, { ca: pki.ca.certificatePem, cert: stranger.certificatePem, key: stranger.privateKeyPem });
    expect(foreign.status).toBeUndefined();
    expect(foreign.error).toBeDefined();
    expect((await plain(endpoint.url.replace('https:', 'http:'))).status).toBeUndefined();
  });

  it('says which address it could not bind', async () => {
    const taken = await start({ listen: '127.0.0.1:0' });
    await expect(startMetricsEndpoint({ listen: `127.0.0.1:${taken.port}` }, source)).rejects.toThrow(`cannot listen for metrics on 127.0.0.1:${taken.port}: the address is in use`);
    await expect(startMetricsEndpoint({ listen: 'localhost' }, source)).rejects.toThrow('metrics.listen must be host:port');
  });
});
