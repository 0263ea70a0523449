/**
 * Liveness of the Session stream as the site sees it. The coordinator writes a heartbeat every
 * heartbeatIntervalMs (announced in HelloReply), but TCP alone never notices a connection that died
 * silently (a partition, a NAT that forgot the flow, a host that vanished): the stream stays open and
 * nothing arrives. A site that hears nothing for `missedBeats` intervals gives the connection up, so it
 * can dial again instead of waiting forever.
 */
export class SessionWatchdog {
  private timer: NodeJS.Timeout | undefined;
  private lastHeard = Date.now();
  private limitMs: number | undefined;

  constructor(private readonly onSilent: (silentMs: number) => void) {}

  /**
   * Gives the connection up after `limitMs` without a message (counted from now), replacing any earlier
   * limit: first the wait for HelloReply, then `missedBeats` heartbeat intervals. A limit of 0 or less
   * (a coordinator that sends no heartbeats) stops watching.
   */
  watch(limitMs: number): void {
    clearTimeout(this.timer);
    this.limitMs = Number.isFinite(limitMs) && limitMs > 0 ? limitMs : undefined;
    this.heard();
    this.arm();
  }

  /** Any message from the coordinator proves the connection alive. */
  heard(): void {
    this.lastHeard = Date.now();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.limitMs = undefined;
  }

  private arm(): void {
    const limit = this.limitMs;
    if (limit === undefined) return;
    this.timer = setTimeout(
      () => {
        // After a long block of the event loop this timer and the heartbeats that arrived meanwhile are
        // due together: let pending I/O run first, then judge.
        setImmediate(() => {
          if (this.limitMs === undefined) return;
          const silent = Date.now() - this.lastHeard;
          if (silent < limit) {
            this.arm();
            return;
          }
          this.stop();
          this.onSilent(silent);
        });
      },
      Math.max(0, this.lastHeard + limit - Date.now()),
    );
    this.timer.unref();
  }
}
