/**
 * The inspector over NATS against a real cluster (3 nats-servers, 3 Chorus
 * node processes): every command answers over `--nats` what it answers over
 * `--url`; a chat user's token and a forged one get nothing from any admin
 * subject (cluster-wide or node-addressed, drain included); a drain over NATS
 * shows its progress and the node leaves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { main } from '../../cluster/inspector/cli.ts';
import { TokenSigner } from '../../cluster/edge/auth.ts';
import { startChorusCluster, waitStable } from '../helpers/chorus-cluster.ts';
import { waitFor } from '../helpers/ports.ts';
import { setupChat } from '../cluster/load.ts';

async function run(args: string[]) {
  const out: string[] = [];
  let err = '';
  const code = await main(args, (s) => out.push(s), (s) => (err += s));
  return { code, out: out.join('\n'), err };
}
async function json(args: string[]) {
  const r = await run([...args, '--json']);
  assert.equal(r.code, 0, `chorus ${args[0]} exits 0: ${r.err}`);
  return JSON.parse(r.out);
}

test('the inspector over NATS: every command, same output as over HTTP, operator credentials only, drain with progress', async () => {
  await using c = await startChorusCluster({ nodes: 3, natsServers: 3 });
  const chat = await setupChat(c, { channels: 4, users: 1 });
  const nc = await connect({ servers: c.nats.urls });
  try {
    const natsUrls = c.nats.urls.join(',');
    const viaNats = ['--nats', natsUrls, '--token', c.operatorToken];
    const viaHttp = ['--url', c.nodes[0]!.url, '--token', c.operatorToken];
    const both = async (args: string[]) => ({ nats: await json([...args, ...viaNats]), http: await json([...args, ...viaHttp]) });

    // nodes: the same members and leader (load figures move between two calls, so compare the stable columns)
    const nodes = await both(['nodes']);
    const stable = (v: { leader: string; nodes: Array<Record<string, unknown>> }) => ({ leader: v.leader, nodes: v.nodes.map(({ node, leader, inTable, state, region, weight, url }) => ({ node, leader, inTable, state, region, weight, url })) });
    assert.deepEqual(stable(nodes.nats), stable(nodes.http));
    assert.deepEqual(nodes.nats.nodes.map((n: { node: string }) => n.node).sort(), ['n1', 'n2', 'n3']);
    assert.ok(['n1', 'n2', 'n3'].includes(nodes.nats.leader), 'a leader is named');

    // ring, where, actors, rebalance: exactly equal, text and JSON
    const ring = await both(['ring']);
    assert.deepEqual(ring.nats, ring.http);
    assert.equal((await run(['ring', ...viaNats])).out, (await run(['ring', ...viaHttp])).out);
    const actor = `channel/${chat.ws}.${chat.channels[0]}`;
    const where = await both(['where', actor]);
    assert.deepEqual(where.nats, where.http);
    assert.equal(where.nats.active, true, 'the channel is active on its owner');
    assert.equal((await run(['where', actor, ...viaNats])).out, (await run(['where', actor, ...viaHttp])).out);
    const actors = await both(['actors', '--type', 'channel']);
    const sorted = (v: { actors: Array<{ node: string; actor: string }> }) => v.actors.map((a) => `${a.node} ${a.actor}`).sort();
    assert.deepEqual(sorted(actors.nats), sorted(actors.http));
    for (const ch of chat.channels) assert.ok(actors.nats.actors.some((a: { actor: string }) => a.actor === `channel/${chat.ws}.${ch}`), `${ch} listed`);
    const onOwner = await json(['actors', '--node', where.nats.owner, ...viaNats]);
    assert.ok(onOwner.actors.length > 0 && onOwner.actors.every((a: { node: string }) => a.node === where.nats.owner));
    const rebalance = await both(['rebalance', '--dry-run']);
    assert.deepEqual(rebalance.nats, rebalance.http);

    // streams: JetStream, whichever node answers
    // (a user actor's first write may create its stream between the two calls: asked again until they agree)
    const names = (v: { streams: Array<{ name: string }> }) => v.streams.map((s) => s.name).sort();
    const streams = await waitFor(async () => {
      const r = await both(['streams']);
      return JSON.stringify(names(r.nats)) === JSON.stringify(names(r.http)) ? r : undefined;
    }, { what: 'the same streams over NATS and HTTP' }) as Awaited<ReturnType<typeof both>>;
    assert.equal(new Set(names(streams.nats)).size, streams.nats.streams.length, 'each stream once');
    assert.ok(streams.nats.streams.some((s: { name: string; messages: number; replicas: number }) => s.name === `CHORUS_LOG_channel_${chat.ws}` && s.messages >= 1 && s.replicas === 3), 'the channel log stream, R3, with records');

    // placement: the table and the leader's history, whichever node answered first
    const placement = await both(['placement']);
    assert.deepEqual(placement.nats, placement.http);
    assert.ok(placement.nats.history.length >= 1, "the leader's history");
    // scale: the leader's explanation
    const scale = await both(['scale', '--explain']);
    assert.equal(scale.nats.node, nodes.nats.leader);
    assert.equal(scale.http.node, nodes.nats.leader);
    assert.equal(scale.nats.isLeader, true);
    // costs: right-sizing from the members; storage not configured on these nodes
    const costs = await both(['costs']);
    assert.deepEqual(costs.nats.storage, { configured: false });
    assert.deepEqual(costs.http.storage, { configured: false });
    assert.match((await run(['costs', ...viaNats])).out, /storage tiering: not configured/);
    const top = await run(['top', '--iterations', '1', ...viaNats]);
    assert.equal(top.code, 0, top.err);
    assert.match(top.out, /chorus top[\s\S]*NODE\s+LEADER/);

    // CHORUS_NATS_URL instead of --nats; both kinds of target at once is a usage error
    const saved = { nats: process.env.CHORUS_NATS_URL, token: process.env.CHORUS_ADMIN_TOKEN };
    try {
      process.env.CHORUS_NATS_URL = natsUrls;
      process.env.CHORUS_ADMIN_TOKEN = c.operatorToken;
      assert.deepEqual(await json(['ring']), ring.nats);
    } finally {
      for (const [k, v] of [['CHORUS_NATS_URL', saved.nats], ['CHORUS_ADMIN_TOKEN', saved.token]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    assert.equal((await run(['ring', ...viaNats, '--url', c.nodes[0]!.url])).code, 2);
    const unreachable = await run(['nodes', '--nats', 'nats://127.0.0.1:1', '--token', c.operatorToken]);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.err, /cannot reach nats:\/\/127\.0\.0\.1:1/);

    // refusals: a chat user's token and a forged operator token, through the CLI and on the raw subjects
    const userToken = chat.tokens.get(chat.users[0]!)!;
    const forged = new TokenSigner('not-the-cluster-secret-0123').sign({ sub: 'mallory', ws: ['*'], kind: 'operator' });
    for (const [token, code] of [[userToken, 'AUTH_FORBIDDEN'], [forged, 'AUTH_BAD_SIGNATURE']] as const) {
      for (const cmd of [['nodes'], ['actors'], ['streams'], ['costs'], ['drain', 'n3']]) {
        const r = await run([...cmd, '--nats', natsUrls, '--token', token]);
        assert.equal(r.code, 1, `${cmd[0]} with a ${code} token fails`);
        assert.match(r.err, new RegExp(code), `${cmd[0]}: ${r.err}`);
        assert.equal(r.out, '', 'and prints nothing');
      }
    }
    const raw = async (subject: string, body: unknown) => JSON.parse(new TextDecoder().decode((await nc.request(subject, typeof body === 'string' ? body : JSON.stringify(body), { timeout: 5000 })).data));
    for (const subject of ['chorus.admin.placement', 'chorus.admin.streams', 'chorus.admin.node.n3.actors', 'chorus.admin.node.n3.drain', 'chorus.admin.node.n3.nosuchop']) {
      assert.deepEqual((await raw(subject, { token: userToken })).error?.code, 'AUTH_FORBIDDEN', `${subject}, user token`);
      assert.deepEqual((await raw(subject, { token: forged })).error?.code, 'AUTH_BAD_SIGNATURE', `${subject}, forged token`);
      assert.deepEqual((await raw(subject, {})).error?.code, 'AUTH_MISSING', `${subject}, no token`);
    }
    assert.equal((await raw('chorus.admin.placement', 'not json')).error.code, 'ADMIN_BAD_REQUEST');
    assert.equal((await raw('chorus.admin.actors', { token: c.operatorToken })).error.code, 'ADMIN_WRONG_SCOPE', 'node-local operations must be addressed to a node');
    assert.equal((await raw('chorus.admin.frobnicate', { token: c.operatorToken })).error.code, 'ADMIN_UNKNOWN_OP');
    const n3 = c.nodes.find((n) => n.id === 'n3')!;
    assert.ok(n3.running(), 'the refused drains did nothing');
    assert.ok((await json(['nodes', ...viaNats])).nodes.some((n: { node: string; inTable: string }) => n.node === 'n3' && n.inTable === 'yes'));

    // drain over NATS, with the progress bar, until the node has left
    const drain = await run(['drain', 'n3', ...viaNats]);
    assert.equal(drain.code, 0, drain.err);
    assert.match(drain.err, /\[[#.]+\]\s+\d+%\s+\d+ actors left on n3/);
    assert.match(drain.out, /n3 drained/);
    await waitFor(() => !n3.running(), { timeoutMs: 30_000, what: 'n3 to exit after the drain' });
    assert.equal(n3.proc.exitCode, 0);
    await waitStable(c, 30_000);
    const after = await json(['nodes', ...viaNats]);
    assert.ok(!after.nodes.some((n: { node: string; inTable: string }) => n.node === 'n3' && n.inTable === 'yes'), 'n3 is out of the table');
    const gone = await run(['actors', '--node', 'n3', ...viaNats]);
    assert.equal(gone.code, 1);
    assert.match(gone.err, /node n3 does not answer on chorus\.admin\.node\.n3\.actors/);
    assert.equal((await run(['actors', '--node', 'n3.*', ...viaNats])).code, 1, 'no wildcard reaches the bus');
    assert.equal((await json(['actors', ...viaNats])).actors.every((a: { node: string }) => a.node !== 'n3'), true);
  } finally {
    chat.close();
    await nc.close();
  }
});
