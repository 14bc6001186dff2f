import type { StepFunction } from './function-step.js';

/**
 * Functions of pipelines defined in TypeScript code (`pipeline().step(name, fn)`), by the name their step's
 * `with.name` carries. Process-wide: defining a pipeline registers its functions, so any engine of the process
 * (a `sluice worker --load`, a test's second engine) runs them. Kept on `globalThis` under a registered symbol so
 * that two copies of this module (the built package and its sources) share one table.
 */
const KEY = Symbol.for('sluice.codeFunctions');

function table(): Map<string, StepFunction> {
  const holder = globalThis as unknown as Record<symbol, Map<string, StepFunction> | undefined>;
  let map = holder[KEY];
  if (!map) {
    map = new Map();
    holder[KEY] = map;
  }
  return map;
}

/** Registers `fn` under `name`; a later registration of the same name replaces it (the same source, a new closure). */
export function registerCodeFunction(name: string, fn: StepFunction): void {
  table().set(name, fn);
}

/** The function registered under `name`, if any. */
export function findCodeFunction(name: string): StepFunction | undefined {
  return table().get(name);
}
