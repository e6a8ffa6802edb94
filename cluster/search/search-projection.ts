/**
 * SearchProjectionSink: the projection of the channel logs into a search
 * index, a ProjectionSink for the same ProjectionRunner that fills the query
 * store (cluster/query/projection-runner.ts), with its own name ('search')
 * and its own stored positions. Only `channel.<ws>.<ch>` streams matter.
 *
 * The fold (the channel actor's rules, actors/lib/channel-state.ts, on
 * search documents): `posted` indexes the message (with `hasFile` from the
 * message's `files`), `edited` replaces the text, `reaction` updates the
 * reactions, `deleted` removes the document. Membership events change
 * nothing here: who may read a channel is decided at query time by the
 * actor, which passes the readable channels into the query.
 *
 * Idempotent and resumable: each write unit (one per writer partition) sees
 * the stored position of its streams, drops records at or below them, loads
 * the documents the remaining events touch, folds in log order in memory and
 * writes whole documents plus the new positions. Replaying any suffix of a
 * stream from its stored position ends in the same documents.
 */
import type { ChannelEventRec } from '../../actors/lib/channel-state.ts';
import { docKey, messageHasFiles, type SearchDoc, type SearchDocKey, type SearchIndexWriter } from '../../actors/search.ts';
import { codec as defaultCodec, type Codec } from '../../runtime/codec.ts';
import type { LogEntry } from '../../runtime/log/event-log.ts';
import type { ProjectionSink } from '../query/projection-runner.ts';

/** The projection name of the search index (its positions are kept apart from the query store's). */
export const SEARCH_PROJECTION = 'search';

/** The channel of a `channel.<ws>.<ch>` stream; undefined for any other stream. */
export function channelOfStream(stream: string): { ws: string; ch: string } | undefined {
  const p = stream.split('.');
  return p.length === 3 && p[0] === 'channel' && p[1] && p[2] ? { ws: p[1], ch: p[2] } : undefined;
}

type Result = Awaited<ReturnType<ProjectionSink['apply']>>;

/** Feeds a SearchIndexWriter from channel log records. */
export class SearchProjectionSink implements ProjectionSink {
  private readonly codec: Codec;

  constructor(private readonly writer: SearchIndexWriter, opts: { codec?: Codec } = {}) {
    this.codec = opts.codec ?? defaultCodec;
  }

  async positions(): Promise<Map<string, number>> {
    await this.writer.ready();
    return this.writer.positions();
  }

  async apply(entries: readonly LogEntry[]): Promise<Result> {
    await this.writer.ready();
    const total: Result = { applied: 0, skipped: 0, poison: 0, positions: new Map() };
    const parts = new Map<string, LogEntry[]>();
    for (const e of entries) {
      const ref = channelOfStream(e.stream);
      const part = ref ? this.writer.partitionOf(ref.ws) : '';
      let g = parts.get(part);
      if (!g) parts.set(part, (g = []));
      g.push(e);
    }
    await Promise.all([...parts.values()].map(async (group) => {
      const streams = [...new Set(group.map((e) => e.stream))].sort();
      // counted from the attempt that commits (update may run fn again after a lost race)
      let last: Awaited<ReturnType<SearchProjectionSink['fold']>> | undefined;
      await this.writer.update(streams, async (tx) => {
        last = await this.fold(group, tx);
        return last.changes;
      });
      total.applied += last!.counts.applied;
      total.skipped += last!.counts.skipped;
      total.poison += last!.counts.poison;
      for (const [s, p] of last!.changes.positions) total.positions.set(s, p);
    }));
    return total;
  }

  private async fold(group: readonly LogEntry[], tx: { positions: ReadonlyMap<string, number>; load(keys: readonly SearchDocKey[]): Promise<Map<string, SearchDoc>> }) {
    const counts = { applied: 0, skipped: 0, poison: 0 };
    const pos = new Map(tx.positions);
    const work: Array<{ ws: string; ch: string; events: ChannelEventRec[] }> = [];
    for (const e of group) {
      if (e.pos <= (pos.get(e.stream) ?? 0)) {
        counts.skipped++;
        continue;
      }
      pos.set(e.stream, e.pos);
      const ref = channelOfStream(e.stream);
      let events: unknown;
      try {
        events = ref ? this.codec.decode(e.data) : undefined;
      } catch {
        events = undefined;
      }
      if (!ref || !Array.isArray(events)) {
        counts.poison++;
        continue;
      }
      counts.applied++;
      work.push({ ...ref, events: events.filter((x): x is ChannelEventRec => typeof x === 'object' && x !== null && typeof (x as { type?: unknown }).type === 'string') });
    }

    // documents touched by edits, deletes and reactions of messages posted before this batch
    const posted = new Set<string>();
    const want = new Map<string, SearchDocKey>();
    for (const { ws, ch, events } of work) {
      for (const ev of events) {
        if (ev.type === 'posted') posted.add(docKey({ ws, ch, seq: ev.msg.seq }));
        else if (ev.type === 'edited' || ev.type === 'deleted' || ev.type === 'reaction') {
          const k = { ws, ch, seq: ev.seq };
          if (!posted.has(docKey(k))) want.set(docKey(k), k);
        }
      }
    }
    const docs = new Map<string, SearchDoc | null>(want.size ? await tx.load([...want.values()]) : []);
    const dirty = new Map<string, SearchDocKey>();
    for (const { ws, ch, events } of work) for (const ev of events) foldEvent(docs, dirty, ws, ch, ev);

    const upserts: SearchDoc[] = [];
    const deletes: SearchDocKey[] = [];
    for (const [k, key] of dirty) {
      const d = docs.get(k);
      if (d) upserts.push(d);
      else deletes.push(key);
    }
    const moved = new Map<string, number>();
    for (const s of new Set(group.map((e) => e.stream))) moved.set(s, pos.get(s) ?? 0);
    return { counts, changes: { upserts, deletes, positions: moved } };
  }
}

/** The document of a live message (marked dirty: the caller changes it), or undefined. */
function liveDoc(docs: Map<string, SearchDoc | null>, dirty: Map<string, SearchDocKey>, ws: string, ch: string, seq: number): SearchDoc | undefined {
  const key = { ws, ch, seq };
  const k = docKey(key);
  const d = docs.get(k);
  if (!d) return undefined;
  dirty.set(k, key);
  return d;
}

/** Applies one channel event to the documents (the channel actor's rules). */
function foldEvent(docs: Map<string, SearchDoc | null>, dirty: Map<string, SearchDocKey>, ws: string, ch: string, e: ChannelEventRec): void {
  // (no closures in here: it runs per event, and the TypeScript loader names each closure it creates, at a cost)
  switch (e.type) {
    case 'posted': {
      const m = e.msg;
      const key = { ws, ch, seq: m.seq };
      const k = docKey(key);
      dirty.set(k, key);
      if (m.deleted) {
        docs.set(k, null);
        break;
      }
      docs.set(k, {
        ws, ch, seq: m.seq, user: m.user, ts: m.ts, text: m.text, parent: m.parent ?? null, editedAt: m.editedAt ?? null,
        hasFile: messageHasFiles(m), reactions: m.reactions ? structuredClone(m.reactions) : {},
      });
      break;
    }
    case 'edited': {
      const d = liveDoc(docs, dirty, ws, ch, e.seq);
      if (!d) break;
      d.text = e.text;
      d.editedAt = e.at;
      if (Object.hasOwn(e, 'files')) d.hasFile = messageHasFiles(e);
      break;
    }
    case 'deleted': {
      // a delete of a document that is not indexed is harmless (the backends ignore it)
      const key = { ws, ch, seq: e.seq };
      const k = docKey(key);
      dirty.set(k, key);
      docs.set(k, null);
      break;
    }
    case 'reaction': {
      const d = liveDoc(docs, dirty, ws, ch, e.seq);
      if (!d) break;
      const users = Object.hasOwn(d.reactions, e.emoji) ? d.reactions[e.emoji]! : [];
      const next = e.add ? (users.includes(e.user) ? users : [...users, e.user]) : users.filter((u) => u !== e.user);
      if (next.length) d.reactions[e.emoji] = next;
      else delete d.reactions[e.emoji];
      break;
    }
    default:
      break;
  }
}
