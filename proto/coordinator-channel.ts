/**
 * Credentials and channel options for dialling the coordinator (participants and operators).
 *
 * The TLS server name (SNI) must be a DNS name, never an IP address (RFC 6066 section 3; Node.js warns
 * with DEP0123 when it is one). grpc-js sends the dialled host unless 'grpc.ssl_target_name_override'
 * names another, so the channel sets that option whenever the dialled host is not the name to send:
 * the configured server name (`server_name: localhost` with `coordinator: 127.0.0.1:7443`, as the
 * docs set up), or, where the name to check is itself an IP, a fixed placeholder (the coordinator
 * ignores SNI). The certificate is always verified against the configured server name, else the host
 * dialled, IP addresses included.
 */
import { isIP } from 'node:net';
import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';
import { clientChannelOptions } from './channel-options.js';
import { channelCredentials, type ChannelCredentialsOptions } from './credentials.js';
import { targetHost } from './target-host.js';

export { targetHost } from './target-host.js';

/** The TLS server name sent when dialling an IP address (never verified against anything). */
export const IP_TARGET_SERVER_NAME = 'fedgate-coordinator';

export interface CoordinatorChannel {
  readonly credentials: ChannelCredentials;
  readonly options: ChannelOptions;
}

export function coordinatorChannel(address: string, tls: ChannelCredentialsOptions, overrides: ChannelOptions = {}): CoordinatorChannel {
  const host = targetHost(address);
  /** The name the coordinator's certificate must carry. */
  const expectedName = tls.serverName ?? host;
  /** The name sent in the handshake: a DNS name only. */
  const sentName = isIP(expectedName) === 0 ? expectedName : IP_TARGET_SERVER_NAME;
  const credentials = channelCredentials({ ...tls, serverName: expectedName });
  if (sentName === host) return { credentials, options: clientChannelOptions(overrides) };
  return { credentials, options: clientChannelOptions({ 'grpc.ssl_target_name_override': sentName, ...overrides }) };
}
