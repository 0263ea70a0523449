/**
 * A connection that dies without either side being told (a network partition, a NAT that forgets the
 * flow, a coordinator host that vanished): TCP stays "up", nothing arrives. The coordinator sends a
 * heartbeat every heartbeatIntervalMs on the Session (federation.proto HelloReply); a daemon that hears
 * nothing for three intervals must give the connection up and dial again, or it waits forever and never
 * takes part in a round again (the "reconnection that silently never resumes" of STYLE.md).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GrpcFederation } from '../support/grpc-federation.js';
import { createTestPki, type TestPki } from '../support/pki.js';

interface BlackHoleProxy {
  readonly port: number;
  /** From now on every open connection silently swallows what either side sends; new connections work. */
  partition(): void;
  readonly connections: () => number;
  close(): Promise<void>;
}

/** A TCP relay to 127.0.0.1:`targetPort` that can black-hole its open connections. */
async function blackHoleProxy(targetPort: number): Promise<BlackHoleProxy> {
  const links: { client: Socket; upstream: Socket; dead: boolean }[] = [];
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const link = { client, upstream, dead: false };
    links.push(link);
    client.on('data', (data) => {
      if (!link.dead) upstream.write(data);
    });
    upstream.on('data', (data) => {
      if (!link.dead) client.write(data);
    });
    for (const socket of [client, upstream]) {
      socket.on('error', () => undefined);
      socket.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy did not bind a TCP port');
  return {
    port: address.port,
    partition() {
      for (const link of links) link.dead = true;
    },
    connections: () => links.length,
    async close() {
      for (const link of links) {
        link.client.destroy();
        link.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let pki: TestPki;
let harness: GrpcFederation | undefined;
let proxy: BlackHoleProxy | undefined;

beforeAll(async () => {
  pki = await createTestPki('fedgate grpc reconnect CA');
});

afterEach(async () => {
  await harness?.close();
  await proxy?.close();
  harness = undefined;
  proxy = undefined;
});

describe('a daemon whose connection silently dies', () => {
  it('notices the missing heartbeats, dials again on a fresh connection and is back in the federation', async () => {
    // A heartbeat every 500 ms: the daemon should give up after about three missed ones.
    harness = await GrpcFederation.start({ pki, sites: 2, rounds: 1, startSites: false, heartbeatIntervalMs: 500 });
    const federation = harness;
    const relay = await blackHoleProxy(federation.coordinator.port);
    proxy = relay;
    federation.startSite('site-1', { dial: `127.0.0.1:${relay.port}` });
    // Connected on both sides: the coordinator registered the Session and the daemon got its HelloReply.
    await expect.poll(() => federation.siteLog.some((entry) => entry.msg === 'connected to the coordinator'), { timeout: 20_000 }).toBe(true);
    const firstSession = federation.coordinator.registry.get('site-1')?.call;
    expect(firstSession).toBeDefined();

    relay.partition();
    const lost = (): string[] =>
      federation.siteLog.filter((entry) => entry.msg === 'connection to the coordinator lost; reconnecting').map((entry) => String(entry['reason']));
    await expect.poll(lost, { timeout: 20_000, interval: 100 }).toEqual([expect.stringMatching(/no message from the coordinator for \d+ ms/)]);
    // A new TCP connection (the old one is still black-holed) and a new Session on the coordinator.
    await expect
      .poll(() => {
        const current = federation.coordinator.registry.get('site-1');
        return current !== undefined && current.call !== firstSession;
      }, { timeout: 20_000 })
      .toBe(true);
    expect(relay.connections()).toBeGreaterThanOrEqual(2);
  });
});
