import type pg from 'pg';
import { storeFailureOf, toStoreError } from '../store-errors.js';
import type { RetryPolicy } from './pg-pool.js';

/**
 * Whether the PostgreSQL server answers: a lost or refused connection marks it unreachable until a transaction
 * commits again. Gives the retry policy of the store's transactions.
 */
export class ConnectionHealth {
  /** When a lost or refused connection was last seen with no success since; null while the server answers. */
  private unreachableSince: number | null = null;
  private readonly onRetry = (err: unknown): void => {
    this.sawError(err);
    this.onError(err);
  };
  private readonly onSuccess = (): void => {
    this.unreachableSince = null;
  };

  constructor(
    private readonly retryForMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** The retry policy of one transaction: retries for `retryForMs`, reporting each error to `onError`. */
  retryPolicy(): RetryPolicy {
    return { retryForMs: this.retryForMs, onRetry: this.onRetry, onSuccess: this.onSuccess };
  }

  sawError(err: unknown): void {
    if (storeFailureOf(err) === 'STORE_UNAVAILABLE') this.unreachableSince ??= Date.now();
  }

  /** Whether the last contact with the server failed for want of a connection, with no success since. */
  isUnreachable(): boolean {
    return this.unreachableSince !== null;
  }

  /** Checks that the server answers `SELECT 1`; throws the store error (STORE_UNAVAILABLE, ...) naming `url`. */
  async ping(pool: pg.Pool, url: string): Promise<void> {
    let client: pg.PoolClient | undefined;
    try {
      client = await pool.connect();
      await client.query('SELECT 1');
      client.release();
      this.onSuccess();
    } catch (err) {
      client?.release(err as Error);
      this.sawError(err);
      throw toStoreError(err, url);
    }
  }
}
