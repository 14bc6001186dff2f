import pg from 'pg';
import { clientTypes } from './pg-pool.js';
import { WAKEUP_CHANNEL } from './pg-store-sql.js';

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;

/**
 * One dedicated connection that LISTENs on the wake-up channel and calls the listener on every
 * notification. When the connection is lost it reconnects with exponential backoff and then calls the
 * listener once, since notifications sent while it was away are gone.
 */
export class WakeupListener {
  private client: pg.Client | null = null;
  private closed = false;
  private backoffMs = MIN_BACKOFF_MS;
  private readonly lostClients = new WeakSet<pg.Client>();

  constructor(
    private readonly connectionString: string,
    private readonly listener: () => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Connects (retrying in the background until it works); resolves after the first attempt. */
  async start(): Promise<void> {
    await this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.connectionString, types: clientTypes() });
    client.on('notification', (msg) => {
      if (msg.channel === WAKEUP_CHANNEL) this.listener();
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${WAKEUP_CHANNEL}`);
    } catch (err) {
      this.lost(client, err);
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    const wasDown = this.backoffMs > MIN_BACKOFF_MS;
    this.backoffMs = MIN_BACKOFF_MS;
    // Whatever was queued while the connection was down never notified anyone.
    if (wasDown) this.listener();
  }

  /** Handles a failed or ended connection once, then reconnects after a backoff. */
  private lost(client: pg.Client, err?: unknown): void {
    if (this.lostClients.has(client)) return;
    this.lostClients.add(client);
    if (this.client === client) this.client = null;
    void client.end().catch(() => undefined);
    if (this.closed) return;
    if (err !== undefined) this.onError(err);
    const wait = this.backoffMs * (0.5 + Math.random() / 2);
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
    // Unref'd: a pending reconnect never keeps the process alive.
    setTimeout(() => void this.connect(), wait).unref();
  }
}
