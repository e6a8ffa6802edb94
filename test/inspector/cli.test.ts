import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../../cluster/inspector/cli.ts';
import { demoClient, embeddedNode } from '../edge/fixture.ts';

async function run(args: string[]) {
  const lines: string[] = [];
  const code = await main(args, (s) => lines.push(s));
  return { code, out: lines.join('\n') };
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
  assert.equal((await run(['costs', ...base])).code, 0);
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
  } finally {
    ada.client.close();
  }
});
