import { describe, expect, it } from 'vitest';
import { buildGraph, descendants, findCycle, renderGraph, withDependencies } from '../../src/core/graph.js';
import type { Pipeline, PipelineSpec } from '../../src/core/model.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { fakeStepTypes } from './fake-steps.js';

/** import -> typing -> score -> summarize, import -> stats, with report needing summarize and stats. */
function pipeline(steps?: PipelineSpec['steps']): Pipeline {
  return normalizePipeline(
    {
      name: 'product-analysis',
      steps: steps ?? {
        import: { uses: 'command', with: { run: 'x' } },
        typing: { uses: 'gate', needs: ['import'] },
        stats: { uses: 'gate', needs: ['import'] },
        score: { uses: 'gate', needs: ['typing'] },
        summarize: { uses: 'gate', needs: ['score'], if: 'steps.score.value > 10' },
        report: { uses: 'gate', needs: ['summarize', 'stats'], disabled: true },
      },
    },
    { stepTypes: fakeStepTypes() },
  );
}

describe('buildGraph', () => {
  it('orders topologically, keeping written order among ready steps', () => {
    const p = pipeline({
      late: { uses: 'gate', needs: ['early'] },
      early: { uses: 'gate' },
      other: { uses: 'gate' },
      last: { uses: 'gate', needs: ['late', 'other'] },
    });
    expect(buildGraph(p).order).toEqual(['early', 'late', 'other', 'last']);
  });

  it('maps needs and dependents both ways', () => {
    const graph = buildGraph(pipeline());
    expect(graph.order).toEqual(['import', 'typing', 'stats', 'score', 'summarize', 'report']);
    expect(graph.needs.get('report')).toEqual(['summarize', 'stats']);
    expect(graph.dependents.get('import')).toEqual(['typing', 'stats']);
    expect(graph.dependents.get('report')).toEqual([]);
  });

  it('rejects a cycle in a pipeline built by hand', () => {
    const p = pipeline({ a: { uses: 'gate' }, b: { uses: 'gate', needs: ['a'] } });
    p.steps[0]!.needs = ['b'];
    expect(() => buildGraph(p)).toThrow('dependency cycle: a -> b -> a');
  });
});

describe('findCycle', () => {
  it('returns null for a DAG', () => {
    expect(findCycle(new Map([['a', []], ['b', ['a']], ['c', ['a', 'b']]]))).toBeNull();
  });

  it('returns the cycle in run order, starting at the first step listed', () => {
    const needs = new Map([
      ['x', []],
      ['a', ['c']],
      ['b', ['a', 'x']],
      ['c', ['b']],
    ]);
    expect(findCycle(needs)).toEqual(['a', 'b', 'c', 'a']);
  });

  it('finds the same cycle whichever step the search meets first', () => {
    const needs = new Map([
      ['c', ['b']],
      ['a', ['c']],
      ['b', ['a']],
    ]);
    expect(findCycle(needs)).toEqual(['c', 'a', 'b', 'c']);
  });

  it('reports a self-loop', () => {
    expect(findCycle(new Map([['a', ['a']]]))).toEqual(['a', 'a']);
  });
});

describe('withDependencies and descendants', () => {
  it('adds everything the named steps need, transitively', () => {
    expect(withDependencies(pipeline(), ['summarize'])).toEqual(new Set(['summarize', 'score', 'typing', 'import']));
    expect(withDependencies(pipeline(), ['stats', 'typing'])).toEqual(new Set(['stats', 'typing', 'import']));
  });

  it('collects the step and everything downstream', () => {
    expect(descendants(pipeline(), 'typing')).toEqual(new Set(['typing', 'score', 'summarize', 'report']));
    expect(descendants(pipeline(), 'report')).toEqual(new Set(['report']));
  });

  it('throws STEP_NOT_FOUND naming an unknown step', () => {
    expect(() => withDependencies(pipeline(), ['import', 'nope'])).toThrow(expect.objectContaining({ code: 'STEP_NOT_FOUND', message: expect.stringContaining('"nope"') }));
    expect(() => descendants(pipeline(), 'nope')).toThrow(expect.objectContaining({ code: 'STEP_NOT_FOUND' }));
  });
});

describe('renderGraph', () => {
  it('draws levels for a terminal, first steps at the top', () => {
    expect(renderGraph(pipeline(), 'ascii')).toBe(
      [
        'product-analysis (6 steps)',
        '',
        'level 1',
        '  import     command',
        '',
        'level 2',
        '  typing     gate             <- import',
        '  stats      gate             <- import',
        '',
        'level 3',
        '  score      gate             <- typing',
        '',
        'level 4',
        '  summarize  gate (if)        <- score',
        '',
        'level 5',
        '  report     gate (disabled)  <- summarize, stats',
        '',
      ].join('\n'),
    );
  });

  it('shows states in the terminal view', () => {
    const text = renderGraph(pipeline(), 'ascii', { import: 'succeeded', typing: 'running', stats: 'failed' });
    expect(text).toContain('  import     [succeeded]  command');
    expect(text).toContain('  typing     [running]    gate             <- import');
    expect(text).toContain('  score      [-]          gate             <- typing');
  });

  it('draws a mermaid flowchart with safe node ids', () => {
    const p = pipeline({ 'load-data': { uses: 'gate' }, end: { uses: 'gate', needs: ['load-data'] } });
    expect(renderGraph(p, 'mermaid')).toBe(['flowchart TD', '  s0["load-data"]', '  s1["end"]', '  s0 --> s1', ''].join('\n'));
  });

  it('colours known states in mermaid', () => {
    const text = renderGraph(pipeline(), 'mermaid', { import: 'succeeded', typing: 'weird' });
    expect(text).toContain('  s0["import<br/>succeeded"]');
    expect(text).toContain('  s1["typing<br/>weird"]');
    expect(text).toContain('  classDef succeeded fill:#c6efce,stroke:#555');
    expect(text).toContain('  class s0 succeeded');
    expect(text).not.toContain('class s1');
  });

  it('draws a graphviz digraph with quoted ids', () => {
    const p = pipeline({ 'load-data': { uses: 'gate' }, 'v1-2': { uses: 'gate', needs: ['load-data'] } });
    p.name = 'etl.daily';
    expect(renderGraph(p, 'dot')).toBe(
      [
        'digraph "etl.daily" {',
        '  rankdir=TB;',
        '  node [shape=box, style=rounded];',
        '  "load-data" [label="load-data"];',
        '  "v1-2" [label="v1-2"];',
        '  "load-data" -> "v1-2";',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('fills dot nodes by state and greys disabled steps', () => {
    const text = renderGraph(pipeline(), 'dot', { import: 'failed' });
    expect(text).toContain('"import" [label="import\\nfailed", style="rounded,filled", fillcolor="#ffc7ce"];');
    expect(text).toContain('"report" [label="report (disabled)", color="gray", fontcolor="gray"];');
    expect(text).toContain('"summarize" -> "report";');
    expect(text).toContain('"stats" -> "report";');
  });
});
