/**
 * Reconnect delays: exponential with full jitter (a random delay in [0, min(max, initial * 2^attempt)]),
 * so a fleet of sites that lost the coordinator together does not reconnect in lockstep.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.round(ceiling * this.random());
  }

  reset(): void {
    this.attempt = 0;
  }
}
