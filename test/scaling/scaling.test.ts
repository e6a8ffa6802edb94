import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { backtest, KubernetesScaler, ReactiveScaler, syntheticTrace, DEFAULT_SCALE_POLICY } from '../../cluster/scaling/index.ts';

test('reactive rule: up at once, down only below 70% after the cooldown, no flapping', () => {
  const r = new ReactiveScaler({ ...DEFAULT_SCALE_POLICY, downCooldownMs: 60_000 });
  let d = r.decide({ at: 0, connections: 120_000, messagesPerSec: 500, currentNodes: 2 });
  assert.equal(d.action, 'up');
  assert.equal(d.target, 3, 'ceil(120k / 50k) = 3');
  d = r.decide({ at: 0, connections: 10_000, messagesPerSec: 4200, currentNodes: 3 });
  assert.deepEqual([d.action, d.target, d.needed.byMessages], ['up', 5, 5], 'messages/s over 1000 per node');
  // 3 of 5 needed = 60% < 70%: wait for the cooldown
  d = r.decide({ at: 1000, connections: 10_000, messagesPerSec: 2500, currentNodes: 5 });
  assert.equal(d.action, 'hold');
  assert.match(d.reason, /waiting/);
  // a bounce back above 70% resets the wait
  d = r.decide({ at: 30_000, connections: 10_000, messagesPerSec: 3900, currentNodes: 5 });
  assert.equal(d.action, 'hold');
  d = r.decide({ at: 40_000, connections: 10_000, messagesPerSec: 2500, currentNodes: 5 });
  assert.equal(d.action, 'hold');
  d = r.decide({ at: 99_000, connections: 10_000, messagesPerSec: 2500, currentNodes: 5 });
  assert.equal(d.action, 'hold', 'cooldown counts from the last time the need went low');
  d = r.decide({ at: 100_000, connections: 10_000, messagesPerSec: 2500, currentNodes: 5 });
  assert.deepEqual([d.action, d.target], ['down', 3]);
  // 4 of 5 = 80%: within the band, hold
  d = r.decide({ at: 200_000, connections: 10_000, messagesPerSec: 3500, currentNodes: 5 });
  assert.equal(d.action, 'hold');
});

test('forecast backtest on a synthetic 30-day trace: low error, peaks pre-scaled 15 min ahead', (t) => {
  for (const [seed, noise] of [[7, 0.05], [8, 0.15]] as const) {
    const r = backtest(syntheticTrace({ days: 37, seed, noise }));
    t.diagnostic(`seed ${seed} noise ${noise}: ${JSON.stringify(r)}`);
    assert.ok(r.mape < 0.1, `MAPE ${r.mape}`);
    assert.ok(r.peaks > 10);
    assert.ok(r.preScaledInTime / r.peaks >= 0.9, `${r.preScaledInTime}/${r.peaks} peaks pre-scaled in time`);
    assert.ok(r.meanConfidence > 0.8);
  }
  // a trace with no pattern at all (an independent random level every hour) must not be trusted
  let s = 9;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const start = Date.UTC(2026, 0, 4);
  const flat = Array.from({ length: 37 * 24 }, (_, h) => ({ at: start + h * 3_600_000, value: 2000 * (0.2 + 1.6 * rnd()) }));
  const r = backtest(flat);
  assert.ok(r.meanConfidence < 0.8, `confidence ${r.meanConfidence} on noise`);
});

test('KubernetesScaler patches the Deployment scale subresource (against a local fake API server)', async () => {
  const seen: Array<{ method: string; url: string; auth: string; body: string }> = [];
  let replicas = 3;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization ?? '', body });
      if (req.url !== '/apis/apps/v1/namespaces/chat/deployments/chorus/scale') { res.writeHead(404).end(); return; }
      if (req.headers.authorization !== 'Bearer sa-token') { res.writeHead(401).end('{}'); return; }
      if (req.method === 'PATCH') {
        assert.equal(req.headers['content-type'], 'application/merge-patch+json');
        replicas = JSON.parse(body).spec.replicas;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Scale', spec: { replicas } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const k = new KubernetesScaler({ apiUrl: `http://127.0.0.1:${port}`, token: 'sa-token', namespace: 'chat', deployment: 'chorus' });
    assert.equal(await k.currentReplicas(), 3);
    await k.setReplicas(5, 'need 5 nodes (messages 4200/s / 1000 per node) > 3: scale up now');
    assert.equal(await k.currentReplicas(), 5);
    const patch = seen.find((s) => s.method === 'PATCH')!;
    assert.match(JSON.parse(patch.body).metadata.annotations['chorus.dev/scale-reason'], /scale up/);
    const bad = new KubernetesScaler({ apiUrl: `http://127.0.0.1:${port}`, token: 'wrong', namespace: 'chat', deployment: 'chorus' });
    await assert.rejects(bad.setReplicas(2, 'x'), /401/);
    await assert.rejects(k.setReplicas(-1, 'x'), RangeError);
  } finally {
    server.close();
  }
});
