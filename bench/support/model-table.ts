/**
 * The table bench/postgres-model.ts and bench/sqlite-model.ts print: one column per storage model, one row per
 * figure, each cell the median of the rounds with their range.
 */

export interface ModelRow<F> {
  label: string;
  value(figures: F): number;
  digits: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Prints `rounds` (model name -> one figure per round) as a table with `rows`. */
export function printModelTable<F>(title: string, rounds: ReadonlyMap<string, F[]>, rows: ReadonlyArray<ModelRow<F>>): void {
  const pad = (s: string) => s.padStart(20);
  console.log(title);
  console.log(''.padEnd(24) + [...rounds.keys()].map(pad).join(''));
  for (const row of rows) {
    const cells = [...rounds.values()].map((figures) => {
      const xs = figures.map((f) => row.value(f));
      const fmt = (x: number) => x.toFixed(row.digits);
      return pad(`${fmt(median(xs))} (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))})`);
    });
    console.log(row.label.padEnd(24) + cells.join(''));
  }
}
