/**
 * Credentials and channel options for dialling the coordinator (participants and operators).
 *
 * grpc-js sends the dialled host as the TLS server name (SNI) even when it is an IP address, which TLS
 * does not allow (RFC 6066 section 3) and Node.js reports with a deprecation warning (DEP0123) on every
 * first connection. For an IP target without an explicit server name, the channel therefore sends a
 * fixed placeholder name instead ('grpc.ssl_target_name_override'; the coordinator ignores SNI) while
 * the certificate is still verified against the IP address itself.
 */
import { isIP } from 'node:net';
import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';
import { clientChannelOptions } from './channel-options.js';
import { channelCredentials, type ChannelCredentialsOptions } from './credentials.js';

/** The TLS server name sent when dialling an IP address (never verified against anything). */
export const IP_TARGET_SERVER_NAME = 'fedgate-coordinator';

export interface CoordinatorChannel {
  readonly credentials: ChannelCredentials;
  readonly options: ChannelOptions;
}

/** The host part of host:port, [v6]:port or a bare host. */
export function targetHost(address: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed !== null) return bracketed[1] as string;
  const colon = address.lastIndexOf(':');
  return colon > 0 && address.indexOf(':') === colon ? address.slice(0, colon) : address;
}

export function coordinatorChannel(address: string, tls: ChannelCredentialsOptions, overrides: ChannelOptions = {}): CoordinatorChannel {
  const host = targetHost(address);
  if (tls.serverName !== undefined || isIP(host) === 0) return { credentials: channelCredentials(tls), options: clientChannelOptions(overrides) };
  return {
    credentials: channelCredentials({ ...tls, serverName: host }),
    options: clientChannelOptions({ 'grpc.ssl_target_name_override': IP_TARGET_SERVER_NAME, ...overrides }),
  };
}
