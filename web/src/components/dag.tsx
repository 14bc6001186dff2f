import dagre from '@dagrejs/dagre';
import { Background, Controls, MarkerType, Position, ReactFlow, type Edge, type Node, type NodeHandle, type NodeProps } from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { memo, useMemo } from 'react';

export interface DagProps {
  nodes: Array<{ name: string; uses?: string; disabled?: boolean }>;
  edges: Array<{ from: string; to: string }>;
  /** Step name -> status (colors the node). */
  states?: Record<string, string>;
  selected?: string | undefined;
  onSelect?: (step: string) => void;
  height?: number;
}

const NODE_W = 170;
const NODE_H = 44;

const NODE_SEP = 14;
const RANK_SEP = 48;
/** Above this many steps dagre's crossing minimization takes seconds; a one-pass layered layout is used instead. */
const DAGRE_LIMIT = 250;

type Positions = Map<string, { x: number; y: number }>;

/** Positions left to right; computed once per graph shape (not on every status change). */
export function layout(nodes: DagProps['nodes'], edges: DagProps['edges']): Positions {
  return nodes.length > DAGRE_LIMIT ? layeredLayout(nodes, edges) : dagreLayout(nodes, edges);
}

/**
 * Linear-time layered layout for large graphs: each step one column right of its furthest need (longest
 * path), rows ordered by the mean row of the needs (one barycenter sweep), columns centered.
 */
function layeredLayout(nodes: DagProps['nodes'], edges: DagProps['edges']): Positions {
  const names = new Set(nodes.map((n) => n.name));
  const parents = new Map<string, string[]>();
  const children = new Map<string, string[]>();
  const indegree = new Map<string, number>();
  for (const n of nodes) indegree.set(n.name, 0);
  for (const e of edges) {
    if (!names.has(e.from) || !names.has(e.to)) continue;
    (parents.get(e.to) ?? parents.set(e.to, []).get(e.to)!).push(e.from);
    (children.get(e.from) ?? children.set(e.from, []).get(e.from)!).push(e.to);
    indegree.set(e.to, (indegree.get(e.to) ?? 0) + 1);
  }
  const rank = new Map<string, number>();
  const queue = nodes.filter((n) => indegree.get(n.name) === 0).map((n) => n.name);
  for (let i = 0; i < queue.length; i++) {
    const n = queue[i]!;
    const r = Math.max(-1, ...(parents.get(n) ?? []).map((p) => rank.get(p) ?? 0)) + 1;
    rank.set(n, r);
    for (const c of children.get(n) ?? []) {
      const left = indegree.get(c)! - 1;
      indegree.set(c, left);
      if (left === 0) queue.push(c);
    }
  }
  for (const n of nodes) if (!rank.has(n.name)) rank.set(n.name, 0); // a cycle (never valid) still gets drawn
  const layers: string[][] = [];
  for (const n of nodes) (layers[rank.get(n.name)!] ??= []).push(n.name);
  const row = new Map<string, number>();
  layers.forEach((layer, r) => {
    if (r > 0) {
      const key = (n: string) => {
        const ps = parents.get(n) ?? [];
        return ps.length ? ps.reduce((sum, p) => sum + (row.get(p) ?? 0), 0) / ps.length : Number.MAX_SAFE_INTEGER;
      };
      const keys = new Map(layer.map((n) => [n, key(n)]));
      layer.sort((a, b) => keys.get(a)! - keys.get(b)!);
    }
    layer.forEach((n, i) => row.set(n, i));
  });
  const tallest = Math.max(...layers.map((l) => l?.length ?? 0));
  const out: Positions = new Map();
  layers.forEach((layer, r) => {
    const offset = ((tallest - layer.length) * (NODE_H + NODE_SEP)) / 2;
    layer.forEach((n, i) => out.set(n, { x: r * (NODE_W + RANK_SEP), y: offset + i * (NODE_H + NODE_SEP) }));
  });
  return out;
}

function dagreLayout(nodes: DagProps['nodes'], edges: DagProps['edges']): Positions {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: NODE_SEP, ranksep: RANK_SEP, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.name, { width: NODE_W, height: NODE_H });
  for (const e of edges) if (g.hasNode(e.from) && g.hasNode(e.to)) g.setEdge(e.from, e.to);
  dagre.layout(g);
  const out = new Map<string, { x: number; y: number }>();
  for (const n of nodes) {
    const p = g.node(n.name);
    out.set(n.name, { x: (p?.x ?? 0) - NODE_W / 2, y: (p?.y ?? 0) - NODE_H / 2 });
  }
  return out;
}

/** The pipeline DAG (React Flow), laid out by dagre, nodes colored by step status. */
export default function Dag({ nodes, edges, states = {}, selected, onSelect, height = 420 }: DagProps) {
  const positions = useMemo(() => layout(nodes, edges), [nodes, edges]);
  const flowEdges = useMemo<Edge[]>(
    () =>
      edges.map((e) => ({
        id: `${e.from}->${e.to}`,
        source: e.from,
        target: e.to,
        markerEnd: { type: MarkerType.ArrowClosed, width: 14, height: 14 },
      })),
    [edges],
  );
  const flowNodes = useMemo<Node<StepData>[]>(
    () =>
      nodes.map((n) => {
        const status = states[n.name] ?? (n.disabled ? 'disabled' : 'none');
        return {
          id: n.name,
          type: 'step',
          position: positions.get(n.name) ?? { x: 0, y: 0 },
          data: { name: n.name, uses: n.uses, status },
          className: `dag-node status-${status}${selected === n.name ? ' selected-step' : ''}`,
          width: NODE_W,
          height: NODE_H,
          handles: HANDLES,
        };
      }),
    [nodes, positions, states, selected],
  );
  return (
    <div className="dag" style={{ height }} data-testid="dag">
      <ReactFlow
        nodes={flowNodes}
        edges={flowEdges}
        fitView
        fitViewOptions={{ maxZoom: 1, padding: 0.15 }}
        minZoom={0.02}
        nodesDraggable={false}
        nodesConnectable={false}
        nodeTypes={NODE_TYPES}
        onNodeClick={(_, node) => onSelect?.(node.id)}
        proOptions={{ hideAttribution: true }}
      >
        <Background gap={16} size={1} />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}

interface StepData extends Record<string, unknown> {
  name: string;
  uses: string | undefined;
  status: string;
}

/** One step: name, type and status; memoized so a status change re-renders only its node. */
const StepNode = memo(function StepNode({ data }: NodeProps<Node<StepData>>) {
  return (
    <>
      <div className="dag-label" data-step={data.name} data-status={data.status}>
        <strong>{data.name}</strong>
        <small>
          {data.uses ?? ''}
          {data.status !== 'none' ? ` · ${data.status}` : ''}
        </small>
      </div>
    </>
  );
});

const NODE_TYPES = { step: StepNode };

// Edge ends declared up front (left and right middle of every node): React Flow draws edges without first
// finding handle elements in the page, and each node renders no handle components.
const HANDLES: NodeHandle[] = [
  { type: 'target', position: Position.Left, x: 0, y: NODE_H / 2, width: 1, height: 1, id: null },
  { type: 'source', position: Position.Right, x: NODE_W - 1, y: NODE_H / 2, width: 1, height: 1, id: null },
];
