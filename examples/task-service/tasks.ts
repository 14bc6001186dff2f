/**
 * The three phases of the task service as plain, typed functions (pipelines.ts calls them from its steps).
 * They are deterministic so the example's test can check their output; a real service would call a model.
 */

export interface Subtask {
  id: string;
  category: 'DATA_MODEL' | 'SERVICE' | 'HTTP_API' | 'TESTING';
  title: string;
  dependsOn: string[];
}

export interface EnrichedSubtask extends Subtask {
  stack: string[];
  practices: string[];
}

const CATEGORIES: Array<[Subtask['category'], string]> = [
  ['DATA_MODEL', 'Data model for'],
  ['SERVICE', 'Service layer for'],
  ['HTTP_API', 'HTTP API for'],
  ['TESTING', 'Tests for'],
];

const PRACTICES: Record<Subtask['category'], string[]> = {
  DATA_MODEL: ['normalize to third normal form', 'add indexes for every lookup'],
  SERVICE: ['keep functions small', 'inject dependencies'],
  HTTP_API: ['validate every request body', 'return {error: {code, message}}'],
  TESTING: ['test behaviour users notice', 'use a real database'],
};

/** Splits a task into one subtask per layer; each layer depends on the one before. */
export function decompose(title: string): Subtask[] {
  return CATEGORIES.map(([category, prefix], i) => ({
    id: `t${i + 1}`,
    category,
    title: `${prefix} ${title}`,
    dependsOn: i === 0 ? [] : [`t${i}`],
  }));
}

/** Adds the tech stack and the practices of each subtask's category. */
export function enrich(subtasks: Subtask[], stack: string[] | undefined): EnrichedSubtask[] {
  return subtasks.map((s) => ({ ...s, stack: stack ?? ['TypeScript', 'PostgreSQL'], practices: PRACTICES[s.category] }));
}

/** One implementation prompt per subtask. */
export function generatePrompts(title: string, subtasks: EnrichedSubtask[]): string[] {
  return subtasks.map(
    (s) =>
      `Task "${title}", step ${s.id} (${s.category}): ${s.title}. Stack: ${s.stack.join(', ')}. ` +
      `Follow: ${s.practices.join('; ')}.${s.dependsOn.length > 0 ? ` Builds on ${s.dependsOn.join(', ')}.` : ''}`,
  );
}
