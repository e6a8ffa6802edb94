import { ChorusError } from '../../runtime/index.ts';
import type { ChorusNode } from '../chorus-node.ts';

/** The embedded profile's demo workspace and its owner. */
export const DEMO_WS = 'demo';
const DEMO_OWNER = 'demo-owner';

/**
 * Makes `user` a member of the demo workspace and its #general and #random
 * channels, creating them on first use. Every step is an idempotent command
 * (fixed clientMsgIds), so concurrent sign-ins and restarts are harmless.
 * Only the dev sign-in of the embedded profile calls it.
 */
export async function joinDemoWorkspace(node: ChorusNode, user: string): Promise<{ ws: string; channels: string[] }> {
  const ws = node.ref('workspace', DEMO_WS);
  const channels = await ensureDemoChannels(node);
  if (user !== DEMO_OWNER) {
    const invite = await ws.ask<{ code: string }>({ op: 'createInvite', by: DEMO_OWNER, ws: DEMO_WS, clientMsgId: `demo-invite-${user}`, role: 'member', maxUses: 1 });
    await ws.ask({ op: 'joinWorkspace', by: user, ws: DEMO_WS, clientMsgId: 'demo-join', code: invite.code }).catch(ignore('CHAT_CONFLICT'));
  }
  for (const ch of channels) {
    await node.ref('channel', `${DEMO_WS}.${ch}`).ask({ op: 'joinChannel', by: user, ws: DEMO_WS, ch, clientMsgId: 'demo-join' }).catch(ignore('CHAT_CONFLICT'));
  }
  return { ws: DEMO_WS, channels };
}

/** The demo workspace and its #general and #random (idempotent: fixed clientMsgIds); returns the channel ids. */
async function ensureDemoChannels(node: ChorusNode): Promise<string[]> {
  const ws = node.ref('workspace', DEMO_WS);
  await ws.ask({ op: 'createWorkspace', by: DEMO_OWNER, ws: DEMO_WS, clientMsgId: 'demo-create', name: 'Demo' }).catch(ignore('CHAT_CONFLICT'));
  const channels: string[] = [];
  for (const name of ['general', 'random']) {
    const r = await ws.ask<{ ch: string }>({ op: 'createChannel', by: DEMO_OWNER, ws: DEMO_WS, clientMsgId: `demo-ch-${name}`, name, kind: 'public' });
    channels.push(r.ch);
  }
  return channels;
}

/** The welcome message posted to #general when the demo workspace is seeded. */
export const DEMO_WELCOME = 'Welcome to the Chorus demo! Open this page in a second window, sign in with another name and chat: '
  + 'react, reply in threads, open a DM from the people list, edit or delete your messages. Mention someone by writing <@their-name>.';

/**
 * Seeds the demo workspace at startup of the embedded profile (dev sign-in
 * on): 'demo' with #general and #random and a welcome message in #general.
 * Idempotent: a restart on the same data dir stores nothing new (the post
 * carries a fixed clientMsgId). Returns the channel ids.
 */
export async function seedDemo(node: ChorusNode): Promise<{ ws: string; channels: string[] }> {
  const channels = await ensureDemoChannels(node);
  const general = channels[0]!;
  await node.ref('channel', `${DEMO_WS}.${general}`).ask({ op: 'post', by: DEMO_OWNER, ws: DEMO_WS, ch: general, clientMsgId: 'demo-welcome', text: DEMO_WELCOME });
  return { ws: DEMO_WS, channels };
}

function ignore(code: string) {
  return (err: unknown) => {
    if (err instanceof ChorusError && err.code === code) return undefined;
    throw err;
  };
}
