import type { RunEvent, StepRecord } from '../store/store.js';
import { formatDuration } from './context.js';

const SYMBOL: Record<string, string> = {
  pending: '·',
  queued: '○',
  running: '◐',
  retrying: '↻',
  succeeded: '✔',
  cached: '≡',
  skipped: '–',
  failed: '✘',
  blocked: '■',
  waiting: '◷',
  cancelled: '⊘',
};

/** One plain ASCII line per transition, for logs, pipes and terminals that want plain output. */
export function formatEventLine(e: RunEvent): string {
  const time = new Date(e.at).toISOString().slice(11, 23);
  const data = e.data ?? {};
  const parts = [time, e.type.padEnd(17), e.step ?? e.runId];
  if (typeof data['attempt'] === 'number' && e.step) parts.push(`attempt ${data['attempt']}`);
  if (typeof data['duration_ms'] === 'number') parts.push(formatDuration(data['duration_ms']));
  if (typeof data['delay_ms'] === 'number') parts.push(`retry in ${formatDuration(data['delay_ms'])}`);
  const error = data['error'] as { code?: string; message?: string } | undefined;
  if (error?.message) parts.push(`${error.code ?? 'ERROR'}: ${firstLine(error.message)}`);
  if (typeof data['reason'] === 'string') parts.push(`(${data['reason']})`);
  return parts.join('  ');
}

function firstLine(text: string): string {
  const i = text.indexOf('\n');
  return i < 0 ? text : `${text.slice(0, i)} ...`;
}

/**
 * Live view for a rich terminal (see `isRichTerminal`): a table of steps redrawn in place as events arrive.
 */
export class LiveProgress {
  private readonly states = new Map<string, { status: string; startedAt?: number; finishedAt?: number }>();
  private drawnLines = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly title: string,
    steps: StepRecord[],
  ) {
    for (const s of steps) this.states.set(s.name, { status: s.status });
  }

  start(): void {
    this.timer = setInterval(() => this.draw(), 100);
    this.draw();
  }

  onEvent(e: RunEvent): void {
    if (!e.step) return;
    const s = this.states.get(e.step) ?? { status: 'pending' };
    const status = e.type.startsWith('step.') ? e.type.slice(5) : s.status;
    if (status === 'started') {
      s.status = 'running';
      s.startedAt = e.at;
    } else if (status !== 'queued' || s.status === 'pending' || s.status === 'retrying') {
      s.status = status === 'queued' ? 'queued' : status;
      if (['succeeded', 'cached', 'skipped', 'failed', 'cancelled'].includes(status)) s.finishedAt = e.at;
    }
    this.states.set(e.step, s);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.draw();
  }

  private draw(): void {
    const now = Date.now();
    const lines = [this.title];
    const width = Math.max(...[...this.states.keys()].map((k) => k.length), 4);
    for (const [name, s] of this.states) {
      const elapsed = s.startedAt ? formatDuration((s.finishedAt ?? now) - s.startedAt) : '';
      lines.push(`  ${SYMBOL[s.status] ?? '?'} ${name.padEnd(width)}  ${s.status.padEnd(9)}  ${elapsed}`);
    }
    const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}F` : '';
    this.out.write(`${up}${lines.map((l) => `\x1b[2K${l}`).join('\n')}\n`);
    this.drawnLines = lines.length;
  }
}
