/**
 * Throughput of the chunked model download and masked-input upload over mutual TLS on loopback.
 * Prints one JSON line: MiB/s for each direction, the median of several timed runs after a warm-up.
 *
 *   npx tsx bench/transfer.ts [--mib 64] [--runs 5] [--chunk-kib 1024] [--same-process]
 *                            [--window-kib N] [--frame-kib N]   (HTTP/2 tuning, defaults in channel-options.ts)
 *
 * By default the coordinator side runs in a child process, as it does in a deployment, so the two
 * TLS endpoints do not share one event loop.
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createCertificateAuthority, issueCertificate } from '../certs/index.js';
import {
  AccessControl,
  FEDERATION_ACCESS_POLICY,
  FedgateError,
  MIB,
  bindServer,
  coordinatorChannel,
  createFedgateServer,
  downloadModel,
  failStream,
  federationProtocol,
  receiveUpload,
  sendModel,
  serverCredentials,
  sha256,
  shutdownServer,
  toGrpcStatus,
  uploadAck,
  uploadMaskedInput,
  type FederationHandlers,
  type TlsIdentity,
  type TransportTuning,
} from '../proto/index.js';

interface ServerSetup {
  readonly identity: TlsIdentity;
  readonly payloadBytes: number;
  readonly chunkBytes: number;
  readonly tuning: TransportTuning;
}

async function startServer(setup: ServerSetup): Promise<{ port: number; stop: () => Promise<void> }> {
  const model = randomBytes(setup.payloadBytes);
  const modelSha256 = sha256(model);
  // The coordinator keeps one buffer per site for its masked input; one site here.
  const uploadBuffer = Buffer.alloc(setup.payloadBytes, 1);
  const server = createFedgateServer({ access: new AccessControl({ policy: FEDERATION_ACCESS_POLICY }) });
  const handlers: FederationHandlers = {
    Session: (call) => failStream(call, new FedgateError('UNIMPLEMENTED', 'Session is not part of this benchmark')),
    GetCommitRecords: (call) => failStream(call, new FedgateError('UNIMPLEMENTED', 'GetCommitRecords is not part of this benchmark')),
    DownloadModel: (call) => {
      sendModel(call, model, { modelSha256, chunkBytes: setup.chunkBytes }).catch((error: unknown) => failStream(call, error));
    },
    UploadMaskedInput: (call, callback) => {
      receiveUpload(call, { maxBytes: setup.payloadBytes, destination: uploadBuffer }).then(
        (upload) => callback(null, uploadAck(upload)),
        (error: unknown) => callback(toGrpcStatus(error)),
      );
    },
  };
  server.addService(federationProtocol().federationService, handlers);
  const port = await bindServer(server, '127.0.0.1:0', serverCredentials(setup.identity, setup.tuning));
  return { port, stop: () => shutdownServer(server, 1000) };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mib: { type: 'string', default: '64' },
      runs: { type: 'string', default: '5' },
      'chunk-kib': { type: 'string', default: '1024' },
      'same-process': { type: 'boolean', default: false },
      serve: { type: 'boolean', default: false },
      'window-kib': { type: 'string' },
      'frame-kib': { type: 'string' },
    },
  });
  const payloadBytes = Number(values.mib) * MIB;
  const runs = Number(values.runs);
  const chunkBytes = Number(values['chunk-kib']) * 1024;
  if (!Number.isInteger(payloadBytes) || payloadBytes <= 0 || !Number.isInteger(runs) || runs < 3) {
    throw new Error(`--mib must be a positive number and --runs an integer >= 3; got ${values.mib} and ${values.runs}`);
  }

  const ca = await createCertificateAuthority({ commonName: 'bench CA', validDays: 1 });
  const coordinator = await issueCertificate(ca, { commonName: 'coordinator', role: 'coordinator', hosts: ['127.0.0.1'] });
  const participant = await issueCertificate(ca, { commonName: 'bench-site', role: 'participant' });
  const serverSetup: ServerSetup = {
    identity: { caPem: ca.certificatePem, certPem: coordinator.certificatePem, keyPem: coordinator.privateKeyPem },
    payloadBytes,
    chunkBytes,
    tuning: {
      ...(values['window-kib'] === undefined ? {} : { flowControlWindowBytes: Number(values['window-kib']) * 1024 }),
      ...(values['frame-kib'] === undefined ? {} : { maxFrameBytes: Number(values['frame-kib']) * 1024 }),
    },
  };

  let port: number;
  let stop: () => Promise<void>;
  if (values['same-process']) {
    ({ port, stop } = await startServer(serverSetup));
  } else {
    const child = fork(fileURLToPath(import.meta.url), ['--serve'], { execArgv: process.execArgv });
    child.send(serverSetup);
    port = await new Promise<number>((resolve, reject) => {
      child.once('message', (message) => resolve(message as number));
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`benchmark server exited with code ${String(code)}`)));
    });
    stop = async () => {
      // Closing the IPC channel asks the server to shut down and exit on its own.
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.disconnect();
      await exited;
    };
  }

  // coordinatorChannel, as sites dial: no IP address sent as the TLS server name (DEP0123).
  const channel = coordinatorChannel(
    `127.0.0.1:${port}`,
    { caPem: ca.certificatePem, certPem: participant.certificatePem, keyPem: participant.privateKeyPem },
    serverSetup.tuning.flowControlWindowBytes === undefined ? {} : { 'grpc-node.flow_control_window': serverSetup.tuning.flowControlWindowBytes },
  );
  const client = new (federationProtocol().FederationClient)(`127.0.0.1:${port}`, channel.credentials, channel.options);
  const upload = randomBytes(payloadBytes);
  const roundId = { counter: 1, nonce: randomBytes(16) };
  const modelHash = await (async () => {
    // The worker drew the model; learn its hash from one untimed download (also the warm-up).
    const probe = client.downloadModel({ modelHash: Buffer.alloc(32) });
    return new Promise<Buffer>((resolve, reject) => {
      probe.on('data', (chunk: { trailer: { sha256: Buffer } | null }) => {
        if (chunk.trailer !== null) resolve(chunk.trailer.sha256);
      });
      probe.on('error', reject);
    });
  })();

  // As the daemons do: the participant reuses its model buffer across rounds and hashes (and signs)
  // its masked input before uploading it.
  const modelBuffer = Buffer.alloc(payloadBytes, 1); // touched, as after earlier rounds
  const uploadSha256 = sha256(upload);
  const downloadRates: number[] = [];
  const uploadRates: number[] = [];
  await uploadMaskedInput(client, { roundId, stage: 'ROUND_STAGE_MASKED_INPUT' }, upload, { chunkBytes, payloadSha256: uploadSha256 }); // warm-up
  // CPU time of this (participant) process per MiB: meaningful even when other load skews wall time.
  const cpuMsPerMib = { download: [] as number[], upload: [] as number[] };
  const cpuMs = (since: NodeJS.CpuUsage): number => {
    const used = process.cpuUsage(since);
    return (used.user + used.system) / 1000;
  };
  for (let run = 0; run < runs; run++) {
    let started = performance.now();
    let cpu = process.cpuUsage();
    const model = await downloadModel(client, modelHash, { maxBytes: payloadBytes, destination: modelBuffer });
    downloadRates.push(model.length / MIB / ((performance.now() - started) / 1000));
    cpuMsPerMib.download.push(cpuMs(cpu) / (model.length / MIB));
    started = performance.now();
    cpu = process.cpuUsage();
    const ack = await uploadMaskedInput(client, { roundId, stage: 'ROUND_STAGE_MASKED_INPUT' }, upload, { chunkBytes, payloadSha256: uploadSha256 });
    uploadRates.push(ack.receivedLength / MIB / ((performance.now() - started) / 1000));
    cpuMsPerMib.upload.push(cpuMs(cpu) / (ack.receivedLength / MIB));
  }
  client.close();
  await stop();

  console.log(
    JSON.stringify({
      bench: 'transfer',
      payload_mib: payloadBytes / MIB,
      chunk_bytes: chunkBytes,
      runs,
      server: values['same-process'] ? 'same process' : 'child process',
      tuning: serverSetup.tuning,
      download_mib_per_s: Math.round(median(downloadRates) * 10) / 10,
      upload_mib_per_s: Math.round(median(uploadRates) * 10) / 10,
      client_cpu_ms_per_mib_download: Math.round(median(cpuMsPerMib.download) * 100) / 100,
      client_cpu_ms_per_mib_upload: Math.round(median(cpuMsPerMib.upload) * 100) / 100,
      load_average_1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
      download_runs_mib_per_s: downloadRates.map((rate) => Math.round(rate)),
      upload_runs_mib_per_s: uploadRates.map((rate) => Math.round(rate)),
    }),
  );
}

if (process.argv.includes('--serve')) {
  process.once('message', (setup) => {
    startServer(setup as ServerSetup).then(
      ({ port, stop }) => {
        process.once('disconnect', () => {
          void stop().then(() => process.exit(0));
        });
        process.send?.(port);
      },
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
} else {
  await main();
}
