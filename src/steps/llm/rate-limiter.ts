/** Limits of one provider key. Absent: unlimited. */
export interface RateLimits {
  /** Requests per minute. */
  rpm?: number | undefined;
  /** Tokens (prompt + completion) per minute. */
  tpm?: number | undefined;
}

/** Time as the limiter sees it; injectable so tests need no real minute. */
export interface LimiterClock {
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/** A granted request; `settle` replaces its estimated tokens with what the server counted. */
export interface RateTicket {
  settle(tokens: number): void;
}

interface Grant {
  at: number;
  tokens: number;
}

export const systemClock: LimiterClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    }),
};

/**
 * Requests-per-minute and tokens-per-minute limits over a sliding window, per key (base URL + API key), in
 * this process only: several worker processes each get the full budget.
 *
 * A request that needs more tokens than the whole `tpm` goes through once the window is empty, so it waits
 * instead of blocking forever.
 */
export class RateLimiter {
  private readonly windows = new Map<string, Grant[]>();

  constructor(
    private readonly clock: LimiterClock = systemClock,
    private readonly windowMs = 60_000,
  ) {}

  /**
   * Waits until a request of `tokens` (an estimate) fits the limits of `key`, then records it.
   * `onWait` hears each wait before it starts.
   */
  async acquire(key: string, limits: RateLimits, tokens: number, signal: AbortSignal, onWait?: (ms: number) => void): Promise<RateTicket> {
    for (;;) {
      const grants = this.current(key);
      const waitMs = Math.max(this.requestWait(grants, limits.rpm), this.tokenWait(grants, limits.tpm, tokens));
      if (waitMs <= 0) return this.grant(grants, tokens);
      onWait?.(waitMs);
      // Others may take the slot while this one sleeps, so check again afterwards.
      await this.clock.sleep(waitMs, signal);
    }
  }

  private current(key: string): Grant[] {
    const since = this.clock.now() - this.windowMs;
    const grants = (this.windows.get(key) ?? []).filter((g) => g.at > since);
    // Kept even when empty: `grant` pushes into this very array. One entry per provider key is small.
    this.windows.set(key, grants);
    return grants;
  }

  private grant(grants: Grant[], tokens: number): RateTicket {
    const grant = { at: this.clock.now(), tokens };
    grants.push(grant);
    return {
      settle(actual: number) {
        grant.tokens = actual;
      },
    };
  }

  /** Until the oldest of the last `rpm` requests leaves the window. */
  private requestWait(grants: Grant[], rpm: number | undefined): number {
    if (rpm === undefined || grants.length < rpm) return 0;
    return this.expiry(grants[grants.length - rpm]);
  }

  /** Until enough of the oldest grants leave the window for `tokens` to fit. */
  private tokenWait(grants: Grant[], tpm: number | undefined, tokens: number): number {
    if (tpm === undefined) return 0;
    let used = grants.reduce((sum, g) => sum + g.tokens, 0);
    for (const grant of grants) {
      if (used + tokens <= tpm) return 0;
      used -= grant.tokens;
      if (used + tokens <= tpm || used === 0) return this.expiry(grant);
    }
    return 0;
  }

  private expiry(grant: Grant | undefined): number {
    return grant === undefined ? 0 : Math.max(1, grant.at + this.windowMs - this.clock.now());
  }
}
