import dagre from '@dagrejs/dagre';
import { Background, Controls, MarkerType, ReactFlow, type Edge, type Node } from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { useMemo } from 'react';

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

/** Positions from dagre, left to right; computed once per graph shape (not on every status change). */
function layout(nodes: DagProps['nodes'], edges: DagProps['edges']): Map<string, { x: number; y: number }> {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 14, ranksep: 48, marginx: 8, marginy: 8 });
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
  const flowNodes = useMemo<Node[]>(
    () =>
      nodes.map((n) => {
        const status = states[n.name] ?? (n.disabled ? 'disabled' : 'none');
        return {
          id: n.name,
          position: positions.get(n.name) ?? { x: 0, y: 0 },
          data: { label: <NodeLabel name={n.name} uses={n.uses} status={status} /> },
          className: `dag-node status-${status}${selected === n.name ? ' selected-step' : ''}`,
          sourcePosition: 'right' as Node['sourcePosition'],
          targetPosition: 'left' as Node['targetPosition'],
          style: { width: NODE_W, height: NODE_H },
        } satisfies Node;
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
        onlyRenderVisibleElements={nodes.length > 200}
        onNodeClick={(_, node) => onSelect?.(node.id)}
        proOptions={{ hideAttribution: true }}
      >
        <Background gap={16} size={1} />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}

function NodeLabel({ name, uses, status }: { name: string; uses: string | undefined; status: string }) {
  return (
    <div className="dag-label" data-step={name} data-status={status}>
      <strong>{name}</strong>
      <small>
        {uses ?? ''}
        {status !== 'none' ? ` · ${status}` : ''}
      </small>
    </div>
  );
}
