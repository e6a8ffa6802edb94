/**
 * Writes deploy/grafana/chorus-dashboard.json: one Grafana dashboard for the
 * metrics every node serves at /metrics. Run: node --import tsx scripts/gen-dashboard.ts
 */
import { writeFileSync } from 'node:fs';

type Panel = { title: string; expr: string[]; unit?: string; legend?: string[] };
const panels: Panel[] = [
  { title: 'WebSocket connections', expr: ['sum by (node) (websocket_connections_active)'], unit: 'short' },
  { title: 'Messages per second', expr: ['sum by (node) (messages_per_second)', 'sum(rate(messages_sent_total[1m]))'], unit: 'short' },
  { title: 'Message latency (post to delivery)', expr: ['histogram_quantile(0.5, sum by (le) (rate(chorus_message_latency_seconds_bucket[5m])))', 'histogram_quantile(0.95, sum by (le) (rate(chorus_message_latency_seconds_bucket[5m])))', 'histogram_quantile(0.99, sum by (le) (rate(chorus_message_latency_seconds_bucket[5m])))'], unit: 's', legend: ['p50', 'p95', 'p99'] },
  { title: 'Database query latency p95 (by role, by operation)', expr: ['histogram_quantile(0.95, sum by (le, role) (rate(database_query_duration_seconds_bucket{operation!="transaction"}[5m])))', 'histogram_quantile(0.95, sum by (le, operation) (rate(database_query_duration_seconds_bucket[5m])))'], unit: 's', legend: ['{{role}}', '{{operation}}'] },
  { title: 'Database queries per second', expr: ['sum by (db, role) (rate(database_query_duration_seconds_bucket{le="+Inf", operation!="transaction"}[1m]))'], unit: 'ops', legend: ['{{db}} {{role}}'] },
  { title: 'Asks by outcome', expr: ['sum by (outcome) (rate(chorus_asks_total[1m]))'], unit: 'reqps' },
  { title: 'Ask latency p99', expr: ['histogram_quantile(0.99, sum by (le) (rate(chorus_ask_duration_seconds_bucket[5m])))'], unit: 's' },
  { title: 'Actors active per type', expr: ['sum by (type) (chorus_actors_active)'], unit: 'short' },
  { title: 'Activations / deactivations', expr: ['sum by (type) (rate(chorus_actor_activations_total[5m]))', 'sum by (reason) (rate(chorus_actor_deactivations_total[5m]))'], unit: 'ops' },
  { title: 'Turn failures', expr: ['sum by (type, code) (rate(chorus_actor_turn_failures_total[5m]))'], unit: 'ops' },
  { title: 'Placement epoch and handoffs', expr: ['max(chorus_placement_epoch)', 'sum(rate(chorus_handoffs_total[5m]))'], unit: 'short' },
  { title: 'Fenced nodes / NATS connected', expr: ['sum(chorus_node_fenced)', 'sum(chorus_nats_connected)'], unit: 'short' },
  { title: 'Edge frames by outcome', expr: ['sum by (outcome) (rate(chorus_edge_frames_total[1m]))'], unit: 'ops' },
  { title: 'Fan-out deliveries', expr: ['sum(rate(chorus_fanout_deliveries_total[1m]))'], unit: 'ops' },
  { title: 'Scale: desired nodes, forecast', expr: ['max(chorus_scale_desired_nodes)', 'max(chorus_scale_forecast_messages_per_second)', 'max(chorus_scale_forecast_confidence)'], unit: 'short' },
  { title: 'Process CPU and memory', expr: ['rate(process_cpu_seconds_total[1m])', 'process_resident_memory_bytes'], unit: 'short' },
];

const dashboard = {
  title: 'Chorus',
  uid: 'chorus-overview',
  schemaVersion: 39,
  version: 1,
  editable: true,
  time: { from: 'now-1h', to: 'now' },
  refresh: '10s',
  templating: { list: [{ name: 'datasource', type: 'datasource', query: 'prometheus' }] },
  panels: panels.map((p, i) => ({
    id: i + 1,
    type: 'timeseries',
    title: p.title,
    datasource: { type: 'prometheus', uid: '${datasource}' },
    gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
    fieldConfig: { defaults: { unit: p.unit ?? 'short' }, overrides: [] },
    targets: p.expr.map((expr, j) => ({ refId: String.fromCharCode(65 + j), expr, legendFormat: p.legend?.[j] ?? '' })),
  })),
};
writeFileSync(new URL('../deploy/grafana/chorus-dashboard.json', import.meta.url), JSON.stringify(dashboard, null, 2) + '\n');
