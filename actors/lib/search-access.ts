/**
 * Who may search what: the user actor's `search` op computes the channels
 * the caller may read right now, with the channel actor's rule
 * (channel-actor.ts `reader`): workspace members read public channels
 * (guests only where they are members); private channels and DMs are read
 * by their members only. That set goes into the search query itself.
 *
 * Sources: the workspace's `listChannels` (the directory: every public
 * channel for non-guests, plus the channels its membership mirror lists for
 * the caller) and the user actor's own channel list. The mirror and the
 * user's list are eventually consistent and never grant access alone: every
 * private channel, DM, and (for guests) public channel among them is
 * confirmed by asking the channel actor itself (`channelInfo` as the
 * caller, which runs its `reader` check). So a user who just left or was
 * removed from a private channel is refused by that channel before the
 * search runs, and a channel that does not answer is left out.
 */
import type { ChannelListing } from '../events.ts';
import type { ChannelKind, Command, Role } from '../protocol.ts';
import { isEmptyQuery, parseSearchQuery } from '../search-query.ts';
import type { Search, SearchPage } from '../search.ts';

/** What `searchAs` needs from the user actor. */
export interface SearchAccess {
  readonly ws: string;
  /** The caller (the user actor's own user). */
  readonly me: string;
  /** The caller's workspace role. */
  readonly role: Role;
  /** The workspace directory as the caller sees it. */
  listChannels(): Promise<ChannelListing[]>;
  /** Channels the user actor believes the caller is a member of. */
  readonly own: ReadonlyArray<{ ch: string; kind: ChannelKind; name: string }>;
  /** Asks the channel actor whether the caller may read it (false on refusal or no answer). */
  canRead(ch: string): Promise<boolean>;
  readonly search: Search;
}

/** Default page size of `search`. */
export const SEARCH_PAGE_DEFAULT = 20;

/** Runs a `search` command for the caller: parse, compute readable channels, ask the Search port. */
export async function searchAs(a: SearchAccess, m: Command<'search'>): Promise<SearchPage> {
  const query = parseSearchQuery(m.query, a.me);
  const order = m.order ?? 'newest';
  const limit = m.limit ?? SEARCH_PAGE_DEFAULT;
  if (isEmptyQuery(query)) return { hits: [] };

  const candidates = new Map<string, { kind: ChannelKind; name: string; listedPublic: boolean }>();
  for (const c of await a.listChannels()) candidates.set(c.ch, { kind: c.kind, name: c.name, listedPublic: c.kind === 'public' });
  for (const c of a.own) if (!candidates.has(c.ch)) candidates.set(c.ch, { kind: c.kind, name: c.name, listedPublic: false });

  // in: narrows before any channel is asked (names case-insensitive, or ids)
  const wanted = query.in.map((s) => s.toLowerCase());
  const inScope = (ch: string, name: string) => !wanted.length || wanted.includes(ch.toLowerCase()) || wanted.includes(name.toLowerCase());

  const readable: string[] = [];
  const toConfirm: string[] = [];
  for (const [ch, c] of candidates) {
    if (!inScope(ch, c.name)) continue;
    // a public channel in the workspace's own directory is readable by every non-guest member: no need to ask it
    if (c.kind === 'public' && c.listedPublic && a.role !== 'guest') readable.push(ch);
    else toConfirm.push(ch);
  }
  const answers = await Promise.all(toConfirm.map((ch) => a.canRead(ch).catch(() => false)));
  toConfirm.forEach((ch, i) => {
    if (answers[i]) readable.push(ch);
  });
  if (!readable.length) return { hits: [] };
  readable.sort();
  return a.search.search({ ws: a.ws, channels: readable, query, order, limit, ...(m.cursor !== undefined ? { cursor: m.cursor } : {}) });
}
