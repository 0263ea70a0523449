/**
 * Waits for a stage to finish: until `isDone()` holds (re-checked whenever `notify()` is called, i.e.
 * on every accepted message or disconnect) or the stage deadline passes. Late messages are the caller's
 * business: once the stage is closed the state machine refuses them.
 */
export class StageGate {
  private wake: (() => void) | undefined;

  notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Resolves to 'done' or 'deadline'; `signal` aborts the wait with 'cancelled'. */
  async wait(deadlineMs: number, isDone: () => boolean, signal?: AbortSignal): Promise<'done' | 'deadline' | 'cancelled'> {
    const until = Date.now() + deadlineMs;
    for (;;) {
      if (signal?.aborted === true) return 'cancelled';
      if (isDone()) return 'done';
      const remaining = until - Date.now();
      if (remaining <= 0) return 'deadline';
      await new Promise<void>((resolve) => {
        const timer = setTimeout(finish, remaining);
        const onAbort = (): void => finish();
        signal?.addEventListener('abort', onAbort, { once: true });
        this.wake = finish;
        function finish(): void {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }
      });
    }
  }
}
