import type { ErrorCode } from '../core/errors.js';
import type { ExpressionContext } from '../core/model.js';

/** One expression posted to an expression thread. */
export interface ExpressionRequest {
  id: number;
  expr: string;
  ctx: ExpressionContext;
}

/** What an expression thread posts: once that it loaded, then per request its value or its error. */
export type ExpressionReply =
  | { type: 'ready' }
  | { type: 'done'; id: number; value: unknown }
  | { type: 'failed'; id: number; code: ErrorCode; message: string; details: unknown };
