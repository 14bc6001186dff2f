/**
 * Entry of an expression worker thread: evaluates one expression at a time, off the main event loop, for
 * {@link ExpressionPool}. A regex that backtracks blocks only this thread, which the pool terminates.
 */
import { parentPort } from 'node:worker_threads';
import { evaluateHere } from '../core/expressions.js';
import { errorMessage, type SluiceError } from '../core/errors.js';
import type { ExpressionReply, ExpressionRequest } from './expression-protocol.js';

if (parentPort === null) throw new Error('expression-thread must run in a worker thread');
const port = parentPort;
const post = (reply: ExpressionReply) => port.postMessage(reply);

port.on('message', (request: ExpressionRequest) => void handle(request));
// JSONata loads on first use: loaded here, its time does not count against the first expression's limit.
await evaluateHere('"ready"', { input: null, steps: {}, run: { id: '', attempt: 0, pipeline: '', version: 0 }, secrets: {} });
post({ type: 'ready' });

async function handle({ id, expr, ctx }: ExpressionRequest): Promise<void> {
  try {
    post({ type: 'done', id, value: await evaluateHere(expr, ctx) });
  } catch (err) {
    const { code, details } = err as Partial<SluiceError>;
    post({ type: 'failed', id, code: code ?? 'EXPRESSION_FAILED', message: errorMessage(err), details });
  }
}
