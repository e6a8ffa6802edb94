import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../../cluster/inspector/cli.ts';
import { demoClient, embeddedNode } from '../edge/fixture.ts';

async function run(args: string[]) {
  const lines: string[] = [];
  let err = '';
  const code = await main(args, (s) => lines.push(s), (s) => (err += s));
  return { code, out: lines.join('\n'), err };
}

test('the inspector against an embedded node: every command, --json, operator credentials only', async () => {
  await using node = await embeddedNode();
  const op = node.signer.sign({ sub: 'ops', ws: ['*'], kind: 'operator' });
  const ada = await demoClient(node, 'ada');
  try {
  await ada.client.post('demo', ada.channels[0]!, 'hello');
  const base = ['--url', node.url, '--token', op];

  const nodes = await run(['nodes', ...base, '--json']);
  assert.equal(nodes.code, 0);
  const nj = JSON.parse(nodes.out);
  assert.equal(nj.nodes[0].node, 'node-1');
  assert.equal(nj.leader, 'node-1');

  const ring = JSON.parse((await run(['ring', ...base, '--json'])).out);
  assert.equal(ring.members[0].keyShare, '100.00%');
  assert.equal(ring.members[0].vnodes, 4000);

  const where = JSON.parse((await run(['where', `channel/demo.${ada.channels[0]}`, ...base, '--json'])).out);
  assert.deepEqual([where.owner, where.active], ['node-1', true]);

  const actors = JSON.parse((await run(['actors', ...base, '--type', 'channel', '--json'])).out);
  assert.ok(actors.actors.some((a: { actor: string }) => a.actor === `channel/demo.${ada.channels[0]}`));

  const table = await run(['nodes', ...base]);
  assert.match(table.out, /NODE\s+LEADER/);
  assert.equal((await run(['placement', ...base])).code, 0);
  const streams = JSON.parse((await run(['streams', ...base, '--json'])).out);
  assert.ok(streams.streams.some((x: { name: string; messages: number }) => x.name === 'chorus_log:channel' && x.messages >= 1), 'the channel log has records');
  assert.equal((await run(['rebalance', '--dry-run', ...base])).code, 0);
  assert.equal((await run(['scale', '--explain', ...base])).code, 0);
  const costs = await run(['costs', ...base]);
  assert.equal(costs.code, 0);
  // the storage section is whatever the node's file store reports (test/inspector/nats.test.ts sees "not configured")
  assert.match(costs.out, /compute \(right-sizing[\s\S]*storage tiering/);
  assert.equal(typeof JSON.parse((await run(['costs', ...base, '--json'])).out).storage.configured, 'boolean');
  assert.equal((await run(['top', '--iterations', '1', ...base, '--json'])).code, 0);

  // refusals: a chat user's token, no token, unknown command, bad usage
  const user = await run(['nodes', '--url', node.url, '--token', ada.token]);
  assert.equal(user.code, 1);
  const saved = process.env.CHORUS_ADMIN_TOKEN;
  delete process.env.CHORUS_ADMIN_TOKEN;
  assert.equal((await run(['nodes', '--url', node.url])).code, 2);
  if (saved !== undefined) process.env.CHORUS_ADMIN_TOKEN = saved;
  assert.equal((await run(['frobnicate', ...base])).code, 2);
  assert.equal((await run(['where', ...base])).code, 1);
  assert.equal((await run(['nodes', '--url', 'http://127.0.0.1:1', '--token', op])).code, 1);
  // the admin endpoints themselves refuse a user token with a typed error
  const r = await fetch(`${node.url}/admin/actors`, { headers: { authorization: `Bearer ${ada.token}` } });
  assert.equal(r.status, 403);
  assert.equal(((await r.json()) as { code: string }).code, 'AUTH_FORBIDDEN');
  for (const [method, path] of [['GET', '/admin/streams'], ['POST', '/admin/drain'], ['GET', '/admin/nosuchop']]) {
    const refused = await fetch(`${node.url}${path}`, { method, headers: { authorization: `Bearer ${ada.token}` } });
    assert.equal(refused.status, 403, `${method} ${path} with a user token`);
  }
  // the operation table decides the verbs: reads are GET, drain is POST
  const wrongVerb = await fetch(`${node.url}/admin/drain`, { headers: { authorization: `Bearer ${op}` } });
  assert.equal(wrongVerb.status, 404);
  assert.equal(((await wrongVerb.json()) as { code: string }).code, 'ADMIN_UNKNOWN_OP');
  assert.equal((await fetch(`${node.url}/admin/nosuchop`, { headers: { authorization: `Bearer ${op}` } })).status, 404);
  } finally {
    ada.client.close();
  }
});

test('costs: the storage-tier section comes from a provider, and a failing one does not fail the command', async () => {
  let fail = false;
  await using node = await embeddedNode({}, {
    storageCosts: async () => {
      if (fail) throw new Error('bucket listing denied');
      return {
        store: 's3://chorus-files', objects: 1200, bytes: 5_000_000, currency: 'USD',
        recommendations: [{ target: 'chorus-files/w1/', currentTier: 'STANDARD', recommendedTier: 'GLACIER', objects: 800, bytes: 4_000_000, monthlySavings: 0.07, why: 'older than 90 days, read fewer than 5 times' }],
      };
    },
  });
  const base = ['--url', node.url, '--token', node.signer.sign({ sub: 'ops', ws: ['*'], kind: 'operator' })];
  const j = JSON.parse((await run(['costs', ...base, '--json'])).out);
  assert.equal(j.storage.configured, true);
  assert.equal(j.storage.recommendations[0].recommendedTier, 'GLACIER');
  const text = await run(['costs', ...base]);
  assert.equal(text.code, 0);
  assert.match(text.out, /storage tiering \(s3:\/\/chorus-files, 1200 objects, 5000000 bytes\):\nTARGET\s+CURRENTTIER\s+RECOMMENDEDTIER[\s\S]*chorus-files\/w1\/\s+STANDARD\s+GLACIER/);
  fail = true;
  const failed = await run(['costs', ...base]);
  assert.equal(failed.code, 0, 'the compute part still answers');
  assert.match(failed.out, /storage tiering: the tiering plan failed: bucket listing denied/);
});
