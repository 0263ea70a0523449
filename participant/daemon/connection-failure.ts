/**
 * What the daemon logs when it cannot reach the coordinator at all (as opposed to losing a connection it
 * had): the diagnosis of proto/connection-diagnosis.ts and, for a problem with the coordinator's
 * certificate, which certificate the coordinator presented and who issued it. That look costs one extra
 * TLS handshake, so it is taken once per distinct failure, not at every retry.
 */
import { SERVER_CERTIFICATE_PROBLEMS, describeServerCertificate, diagnoseConnectionFailure, type ConnectionProblem } from '../../proto/connection-diagnosis.js';

export interface ConnectFailureReport {
  readonly problem: ConnectionProblem;
  /** What failed, what the coordinator presented (certificate problems), and what to do. */
  readonly reason: string;
}

export class ConnectFailureDescriber {
  private readonly certificates = new Map<string, Promise<string | undefined>>();

  constructor(
    private readonly address: string,
    private readonly tls: { readonly caPem: string; readonly certPem: string; readonly keyPem: string; readonly serverName?: string },
  ) {}

  async describe(details: string): Promise<ConnectFailureReport> {
    const diagnosis = diagnoseConnectionFailure(details, { address: this.address, ...(this.tls.serverName === undefined ? {} : { serverName: this.tls.serverName }) });
    let presented: string | undefined;
    if (SERVER_CERTIFICATE_PROBLEMS.has(diagnosis.problem)) {
      let look = this.certificates.get(diagnosis.detail);
      if (look === undefined) {
        look = describeServerCertificate(this.address, this.tls).then((description) => description?.text);
        this.certificates.set(diagnosis.detail, look);
      }
      presented = await look;
    }
    return { problem: diagnosis.problem, reason: `${diagnosis.advice}${presented === undefined ? '' : `; ${presented}`} [${diagnosis.detail}]` };
  }
}
