import pg from 'pg';
import { clientTypes } from './pg-pool.js';
import { LEADER_LOCK_KEY } from './pg-store-sql.js';

/** How often a follower tries to take the lock, and a leader checks that its connection still holds it. */
export const CAMPAIGN_EVERY_MS = 1000;
/** A check that takes longer than this counts as a lost connection. */
const QUERY_TIMEOUT_MS = 5000;
/**
 * The server ends a campaigning session idle for this long (PostgreSQL 14+): a leader whose host vanished without
 * closing its connection loses the lock then, instead of when TCP keepalive gives up (hours, by default).
 */
const IDLE_SESSION_TIMEOUT_MS = 5 * CAMPAIGN_EVERY_MS;

/**
 * Leadership of one database among the worker processes that use it: the process whose dedicated connection
 * holds the session-level advisory lock {@link LEADER_LOCK_KEY} leads. The lock goes with the connection, so when
 * the leader's process dies or its connection is lost, the server releases it and the next follower to try
 * (every {@link CAMPAIGN_EVERY_MS}) leads. A leader that loses its connection stops leading at once and campaigns
 * again on a new one. The server ends a session idle for five checks, so a leader whose host vanished without
 * closing its connection leads no longer after a few seconds.
 */
export class LeaderElection {
  private client: pg.Client | null = null;
  private leading = false;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private tick: Promise<void> = Promise.resolve();

  constructor(
    private readonly connectionString: string,
    private readonly onChange: (leading: boolean) => void,
    private readonly onError: (err: unknown) => void,
    private readonly everyMs = CAMPAIGN_EVERY_MS,
  ) {}

  /** Makes the first attempt (resolves after it) and keeps trying in the background. */
  async start(): Promise<void> {
    this.tick = this.campaign();
    await this.tick;
  }

  /** Stops campaigning; a leader releases the lock, so a follower takes over at its next try. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.tick;
    const c = this.client;
    this.client = null;
    if (c && this.leading) await c.query('SELECT pg_advisory_unlock($1::bigint)', [String(LEADER_LOCK_KEY)]).catch(() => undefined);
    this.set(false);
    await c?.end().catch(() => undefined);
  }

  private async campaign(): Promise<void> {
    if (this.closed) return;
    let client = this.client;
    try {
      if (!client) client = await this.connect();
      if (this.leading) {
        // The lock lives as long as the session: a connection that still answers still holds it.
        await client.query('SELECT 1');
      } else {
        const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [String(LEADER_LOCK_KEY)]);
        if (rows[0]?.locked && this.client === client && !this.closed) this.set(true);
      }
    } catch (err) {
      if (client) this.lost(client, err);
      else this.onError(err);
    }
    if (this.closed) return;
    this.timer = setTimeout(() => (this.tick = this.campaign()), this.everyMs);
    // A pending campaign never keeps the process alive.
    this.timer.unref();
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.connectionString, types: clientTypes(), keepAlive: true, query_timeout: QUERY_TIMEOUT_MS });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    await client.connect();
    // Older servers have no such setting: their sessions live until TCP notices a dead peer.
    await client.query(`SET idle_session_timeout = ${Math.max(IDLE_SESSION_TIMEOUT_MS, 5 * this.everyMs)}`).catch(() => undefined);
    this.client = client;
    return client;
  }

  /** The connection failed: whatever it held is gone (or will be when the server notices); campaign anew. */
  private lost(client: pg.Client, err?: unknown): void {
    if (this.client !== client) return;
    this.client = null;
    this.set(false);
    void client.end().catch(() => undefined);
    if (err !== undefined && !this.closed) this.onError(err);
  }

  private set(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    this.onChange(leading);
  }
}
