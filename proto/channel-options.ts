/**
 * gRPC channel and server options shared by coordinator and participant.
 *
 * Message limits: big payloads move as chunk streams (chunking.ts), so no message needs more than one
 * chunk plus envelope. The limits are therefore gRPC's 4 MiB default or, if a chunk size above it is
 * ever configured, that chunk plus headroom, and never "unlimited": raising the limit is not how fedgate
 * moves big models (flower #3006). The send limit is set as well (grpc-js default: unlimited) so an
 * oversized message fails locally with a clear error instead of at the peer.
 *
 * Flow control: HTTP/2's initial 64 KiB stream window stalls a 1 MiB chunk for several round trips;
 * windows of a few chunks keep the pipe full on loopback and LANs alike (bench/transfer.ts). The
 * client raises both its stream and connection windows ('grpc-node.flow_control_window'); the server
 * advertises a larger stream window (serverHttp2Settings) and raises each incoming connection's window
 * once bound (bindServer in server.ts: grpc-js has no option for it).
 */
import type { ChannelOptions, ServerOptions } from '@grpc/grpc-js';
import { MAX_CHUNK_BYTES, MIB } from './chunking.js';

/** grpc's default receive limit (4 MiB). */
export const GRPC_DEFAULT_MAX_MESSAGE_BYTES = 4 * MIB;
/** Room for a chunk's envelope (offset, trailer, header fields) and for the Session's largest control messages. */
export const MESSAGE_HEADROOM_BYTES = 64 * 1024;
export const MAX_MESSAGE_BYTES = Math.max(GRPC_DEFAULT_MAX_MESSAGE_BYTES, MAX_CHUNK_BYTES + MESSAGE_HEADROOM_BYTES);
/** HTTP/2 flow-control window for streams and connections (bytes). */
export const FLOW_CONTROL_WINDOW_BYTES = 8 * MIB;
/**
 * Largest HTTP/2 DATA frame we accept (RFC 7540 section 6.5.2: 16 KiB to 16 MiB - 1). Larger frames
 * mean fewer frames, callbacks and window updates per chunk; TLS still records at 16 KiB.
 */
export const HTTP2_MAX_FRAME_BYTES = MIB;

export interface TransportTuning {
  /** @default FLOW_CONTROL_WINDOW_BYTES */
  readonly flowControlWindowBytes?: number;
  /** @default HTTP2_MAX_FRAME_BYTES */
  readonly maxFrameBytes?: number;
}

/** HTTP/2 SETTINGS a fedgate server advertises (grpc-js has no server option for them). */
export function serverHttp2Settings(tuning: TransportTuning = {}): { initialWindowSize: number; maxFrameSize: number } {
  return {
    initialWindowSize: tuning.flowControlWindowBytes ?? FLOW_CONTROL_WINDOW_BYTES,
    maxFrameSize: tuning.maxFrameBytes ?? HTTP2_MAX_FRAME_BYTES,
  };
}

/** Options for a participant's or operator's channel to the coordinator. */
export function clientChannelOptions(overrides: ChannelOptions = {}): ChannelOptions {
  return {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
    ...overrides,
  };
}

/** Options for the coordinator's server (interceptors are added by createFedgateServer). */
export function serverChannelOptions(overrides: ServerOptions = {}): ServerOptions {
  return {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    ...overrides,
  };
}
