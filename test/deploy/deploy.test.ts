import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { embeddedNode } from '../edge/fixture.ts';

const docs = (file: string) => parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as any);
const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

test('Kubernetes manifests: the seed\'s HPAs, readiness on /readyz, a draining preStop, PDBs', () => {
  const all = [...docs('deploy/k8s/chorus.yaml'), ...docs('deploy/k8s/hpa.yaml')];
  for (const d of all) assert.ok(d.apiVersion && d.kind && d.metadata?.name, `every document has apiVersion, kind, metadata.name: ${JSON.stringify(d).slice(0, 80)}`);
  const deploys = all.filter((d) => d.kind === 'Deployment');
  assert.deepEqual(deploys.map((d) => d.metadata.name).sort(), ['message-service', 'websocket-service']);
  for (const d of deploys) {
    assert.deepEqual(d.spec.selector.matchLabels, d.spec.template.metadata.labels, 'selector matches the pod labels');
    const c = d.spec.template.spec.containers[0];
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.match(c.lifecycle.preStop.exec.command.join(' '), /kill -USR2 1/, 'preStop drains the node');
    assert.ok(d.spec.template.spec.terminationGracePeriodSeconds >= 30);
    assert.ok(c.env.some((e: any) => e.name === 'CHORUS_AUTH_SECRET' && e.valueFrom.secretKeyRef));
  }
  const hpa = Object.fromEntries(all.filter((d) => d.kind === 'HorizontalPodAutoscaler').map((h) => [h.metadata.name, h.spec]));
  assert.deepEqual([hpa['message-service-hpa'].minReplicas, hpa['message-service-hpa'].maxReplicas], [10, 100]);
  assert.equal(hpa['message-service-hpa'].metrics.find((m: any) => m.type === 'Resource').resource.target.averageUtilization, 70);
  assert.equal(hpa['message-service-hpa'].metrics.find((m: any) => m.type === 'Pods').pods.target.averageValue, '1000');
  assert.deepEqual([hpa['websocket-service-hpa'].minReplicas, hpa['websocket-service-hpa'].maxReplicas], [5, 50]);
  assert.equal(hpa['websocket-service-hpa'].metrics[0].pods.target.averageValue, '40000');
  for (const h of Object.values(hpa) as any[]) assert.ok(deploys.some((d) => d.metadata.name === h.scaleTargetRef.name), 'HPA targets an existing Deployment');
  assert.equal(all.filter((d) => d.kind === 'PodDisruptionBudget').length, 2);
  const nats = docs('deploy/k8s/nats-values.yaml')[0];
  assert.equal(nats.config.cluster.replicas, 3);
  assert.equal(nats.config.jetstream.enabled, true);
});

test('alert rules pass promtool and cover the seed\'s thresholds', (t) => {
  const rules = docs('deploy/prometheus/chorus-alerts.yml')[0].groups.flatMap((g: any) => g.rules);
  const byName = Object.fromEntries(rules.map((r: any) => [r.alert, r.expr]));
  assert.match(byName.ChorusHighMessageLatency, /0\.95.*> 0\.5/);
  assert.match(byName.ChorusLowCacheHitRate, /< 0\.8/);
  assert.match(byName.ChorusSlowDatabaseQueries, /0\.95.*database_query_duration_seconds_bucket/);
  for (const a of ['ChorusNodeDown', 'ChorusProjectionLag', 'ChorusNatsUnreachable']) assert.ok(byName[a], a);
  if (!hasPromtool) return t.skip('promtool not installed (Debian package prometheus); .ci/run installs it');
  execFileSync('promtool', ['check', 'rules', 'deploy/prometheus/chorus-alerts.yml']);
});

test('a scraped /metrics passes promtool and has the metrics the alerts, HPAs and dashboard use', async (t) => {
  await using node = await embeddedNode();
  const text = await (await fetch(`${node.url}/metrics`)).text();
  for (const m of ['websocket_connections_active', 'messages_sent_total', 'messages_per_second', 'chorus_message_latency_seconds', 'chorus_asks_total', 'chorus_actors_active', 'chorus_placement_epoch', 'chorus_node_fenced', 'chorus_actor_activations_total', 'chorus_scale_desired_nodes', 'database_query_duration_seconds']) {
    assert.match(text, new RegExp(`^# TYPE ${m} `, 'm'), `${m} is exported`);
  }
  const dash = JSON.parse(readFileSync('deploy/grafana/chorus-dashboard.json', 'utf8'));
  const used = new Set<string>(dash.panels.flatMap((p: any) => p.targets.flatMap((x: any) => [...x.expr.matchAll(/\b((?:chorus|websocket|messages|process|cache|database)_[a-z_]+?)(?:_bucket)?\b(?=[\[{)\s]|$)/g)].map((m) => m[1]))));
  const missing = [...used].filter((m) => !new RegExp(`^# TYPE ${m} `, 'm').test(text) && !['cache_hit_rate', 'chorus_projection_lag_seconds', 'chorus_nats_connected' /* cluster profile only */].includes(m));
  assert.deepEqual(missing, [], 'dashboard metrics exist');
  if (!hasPromtool) return t.skip('promtool not installed (Debian package prometheus); .ci/run installs it');
  const dir = mkdtempSync(join(tmpdir(), 'chorus-metrics-'));
  writeFileSync(join(dir, 'metrics.txt'), text);
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text });
  // prom-client's own default gauges (nodejs_active_*_total) break a naming lint; ours must be clean
  const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() && !/^nodejs_active_(handles|requests|resources)_total /.test(l));
  assert.deepEqual(problems, [], `promtool check metrics found problems in Chorus's own metrics`);
});
