/**
 * A fake Elasticsearch behind Elastic's own mock connection
 * (@elastic/elasticsearch-mock): the real @elastic/elasticsearch client
 * builds and sends every request (paths, query strings, ndjson bulk
 * bodies), and these routes answer them from in-memory indices and aliases.
 *
 * The mock executes nothing by itself, so `_search` is answered by a small
 * evaluator of exactly the query DSL subset the adapter emits (bool
 * filter/must, term, terms, range, match with operator and, match_phrase,
 * match_all; sort with search_after; from/size; whole-field highlight; a
 * terms aggregation). Its analysis is lower case + split on non-letters: no
 * stemming or stop words, so the shared conformance suite sticks to words
 * that every backend matches alike. What this verifies: the requests the
 * adapter sends (bodies, index names, routing, aliases, mappings) and the
 * adapter's logic around them; not Elasticsearch's own ranking or analysis.
 */
import { createRequire } from 'node:module';
import { Client } from '@elastic/elasticsearch';

// the mock recognises errors by `instanceof` against the CommonJS build of the client, which it requires itself
const require = createRequire(import.meta.url);
const { errors } = require('@elastic/elasticsearch') as typeof import('@elastic/elasticsearch');
type MockParams = { method: string; path: string; querystring: Record<string, unknown>; body: unknown };
/** The part of @elastic/elasticsearch-mock's ClientMock used here (required as CommonJS, like its errors). */
interface ClientMockLike {
  add(pattern: { method: string | string[]; path: string | string[] }, fn: (p: MockParams) => unknown): void;
  getConnection(): never;
}
const Mock = require('@elastic/elasticsearch-mock') as new () => ClientMockLike;

type Source = Record<string, unknown>;
interface Doc { source: Source; routing?: string | undefined }
interface Index { settings: Record<string, unknown>; mappings: Record<string, unknown>; docs: Map<string, Doc> }
interface AliasTarget { index: string; filter?: unknown; routing?: string; is_write_index?: boolean }

/** A request the client sent. */
export interface RecordedRequest { method: string; path: string; querystring: Record<string, unknown>; body: unknown }

const tokens = (s: string) => s.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
const notFound = (what: string) => new errors.ResponseError({
  body: { error: { type: 'index_not_found_exception', reason: `no such index [${what}]` }, status: 404 }, statusCode: 404, headers: {}, warnings: null, meta: {} as never,
} as never);
const failure = (status: number, type: string) => new errors.ResponseError({
  body: { error: { type, reason: type }, status }, statusCode: status, headers: {}, warnings: null, meta: {} as never,
} as never);

/** The fake cluster; `client` talks to it. */
export class FakeElasticsearch {
  readonly mock = new Mock();
  readonly client: Client;
  readonly indices = new Map<string, Index>();
  readonly aliases = new Map<string, AliasTarget[]>();
  readonly requests: RecordedRequest[] = [];
  /** Faults: whole bulk requests to answer 429, and bulk items to answer 429, before behaving again. */
  readonly faults = { bulkRequests429: 0, bulkItems429: 0 };
  /** `_cat/indices` document counts to report instead of the real ones (the force-merge test). */
  readonly catDocCounts = new Map<string, number>();

  constructor() {
    this.client = new Client({ node: 'http://es.invalid:9200', Connection: this.mock.getConnection(), maxRetries: 0 });
    const all = ['GET', 'POST', 'PUT', 'HEAD', 'DELETE'];
    this.mock.add({ method: all, path: '*' }, (p: MockParams) => {
      this.requests.push({ method: p.method, path: decodeURIComponent(p.path), querystring: p.querystring ?? {}, body: p.body ?? undefined });
      try {
        return this.route(p.method, decodeURIComponent(p.path), p.querystring ?? {}, (p.body ?? {}) as never);
      } catch (err) {
        if (err instanceof errors.ResponseError) return err;
        throw err;
      }
    });
  }

  /** Requests whose path matches. */
  sent(path: RegExp, method?: string): RecordedRequest[] {
    return this.requests.filter((r) => path.test(r.path) && (!method || r.method === method));
  }

  private route(method: string, path: string, qs: Record<string, unknown>, body: never): unknown {
    const seg = path.split('/').filter(Boolean);
    if (seg[0] === '_bulk') return this.bulk(body as unknown[]);
    if (seg[0] === '_aliases') return this.updateAliases(body);
    if (seg[0] === '_alias') {
      const targets = this.aliases.get(seg[1]!);
      if (!targets?.length) throw notFound(seg[1]!);
      if (method === 'HEAD') return '';
      return Object.fromEntries(targets.map((t) => [t.index, { aliases: { [seg[1]!]: {} } }]));
    }
    if (seg[0] === '_mget') return this.mget(undefined, body);
    if (seg[0] === '_reindex') return this.reindex(body);
    if (seg[0] === '_cat' && seg[1] === 'indices') return this.cat(seg[2] ?? '*');
    const index = seg[0]!;
    if (seg.length === 1) {
      if (method === 'HEAD') {
        if (!this.indices.has(index)) throw notFound(index);
        return '';
      }
      if (method === 'PUT') {
        if (this.indices.has(index)) throw failure(400, 'resource_already_exists_exception');
        const b = (body ?? {}) as { settings?: Record<string, unknown>; mappings?: Record<string, unknown> };
        this.indices.set(index, { settings: b.settings ?? {}, mappings: b.mappings ?? {}, docs: new Map() });
        return { acknowledged: true, index };
      }
    }
    if (seg[1] === '_search') return this.search(index, body);
    if (seg[1] === '_mget') return this.mget(index, body);
    if (seg[1] === '_delete_by_query') return this.deleteByQuery(index, body, qs);
    if (seg[1] === '_forcemerge') return { _shards: { total: 1, successful: 1, failed: 0 } };
    if (seg[1] === '_count') return { count: this.resolve(index).reduce((n, t) => n + this.matching(t).length, 0) };
    throw failure(400, `fake elasticsearch: unsupported ${method} ${path}`);
  }

  // ---- name resolution ----------------------------------------------------------

  /** Indices behind a name (index, alias, comma list, wildcard), each with the alias filter and routing. */
  private resolve(name: string): Array<{ index: string; filter?: unknown }> {
    const out: Array<{ index: string; filter?: unknown }> = [];
    for (const part of name.split(',')) {
      if (part.includes('*')) {
        const re = new RegExp(`^${part.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\-]/g, '\\$&')).join('.*')}$`);
        for (const i of this.indices.keys()) if (re.test(i)) out.push({ index: i });
      } else if (this.indices.has(part)) out.push({ index: part });
      else if (this.aliases.get(part)?.length) for (const t of this.aliases.get(part)!) out.push({ index: t.index, filter: t.filter });
      else throw notFound(part);
    }
    return out;
  }

  private writeTarget(name: string): { index: string; routing?: string | undefined } {
    if (this.indices.has(name)) return { index: name };
    const t = this.aliases.get(name);
    if (!t?.length) throw notFound(name);
    const w = t.length === 1 ? t[0]! : t.find((x) => x.is_write_index);
    if (!w) throw failure(400, 'illegal_argument_exception');
    return { index: w.index, routing: w.routing };
  }

  private matching(t: { index: string; filter?: unknown }, query?: unknown): Array<[string, Doc]> {
    const idx = this.indices.get(t.index)!;
    return [...idx.docs].filter(([, d]) => (!t.filter || matches(t.filter, d.source)) && (!query || matches(query, d.source)));
  }

  // ---- APIs -----------------------------------------------------------------------

  private updateAliases(body: { actions: Array<Record<string, AliasTarget & { alias: string }>> }) {
    // validate first, then apply: atomic like the real API
    for (const a of body.actions) {
      const [kind, v] = Object.entries(a)[0]!;
      if (!this.indices.has(v.index)) throw notFound(v.index);
      if (kind === 'remove' && !this.aliases.get(v.alias)?.some((t) => t.index === v.index)) throw failure(404, 'aliases_not_found_exception');
    }
    for (const a of body.actions) {
      const [kind, v] = Object.entries(a)[0]!;
      const list = (this.aliases.get(v.alias) ?? []).filter((t) => t.index !== v.index);
      if (kind === 'add') list.push({ index: v.index, ...(v.filter ? { filter: v.filter } : {}), ...(v.routing ? { routing: v.routing } : {}), ...(v.is_write_index ? { is_write_index: true } : {}) });
      this.aliases.set(v.alias, list);
    }
    return { acknowledged: true };
  }

  private bulk(lines: unknown[]) {
    if (this.faults.bulkRequests429 > 0) {
      this.faults.bulkRequests429--;
      throw failure(429, 'es_rejected_execution_exception');
    }
    const items: unknown[] = [];
    let errorsSeen = false;
    for (let i = 0; i < lines.length; i++) {
      const [op, meta] = Object.entries(lines[i] as Record<string, { _index: string; _id: string }>)[0]!;
      if (op === 'index') {
        const src = lines[++i] as Source;
        if (this.faults.bulkItems429 > 0) {
          this.faults.bulkItems429--;
          errorsSeen = true;
          items.push({ index: { _index: meta._index, _id: meta._id, status: 429, error: { type: 'es_rejected_execution_exception', reason: 'queue full' } } });
          continue;
        }
        const t = this.writeTarget(meta._index);
        this.indices.get(t.index)!.docs.set(meta._id, { source: structuredClone(src), routing: t.routing });
        items.push({ index: { _index: t.index, _id: meta._id, status: 201, result: 'created' } });
      } else if (op === 'delete') {
        const t = this.writeTarget(meta._index);
        const had = this.indices.get(t.index)!.docs.delete(meta._id);
        if (!had) errorsSeen = true;
        items.push({ delete: { _index: t.index, _id: meta._id, status: had ? 200 : 404, result: had ? 'deleted' : 'not_found' } });
      } else throw failure(400, `fake elasticsearch: bulk op ${op}`);
    }
    return { took: 1, errors: errorsSeen, items };
  }

  private mget(index: string | undefined, body: { docs?: Array<{ _index?: string; _id: string }>; ids?: string[] }) {
    const reqs = body.docs ?? (body.ids ?? []).map((id) => ({ _index: index, _id: id }));
    return {
      docs: reqs.map((r) => {
        const name = r._index ?? index!;
        let t: { index: string };
        try {
          t = this.writeTarget(name);
        } catch {
          return { _index: name, _id: r._id, error: { type: 'index_not_found_exception' } };
        }
        const d = this.indices.get(t.index)!.docs.get(r._id);
        return d ? { _index: t.index, _id: r._id, found: true, _source: structuredClone(d.source) } : { _index: t.index, _id: r._id, found: false };
      }),
    };
  }

  private reindex(body: { source: { index: string; query?: unknown }; dest: { index: string; routing?: string } }) {
    let n = 0;
    for (const t of this.resolve(body.source.index)) {
      for (const [id, d] of this.matching(t, body.source.query)) {
        const routing = body.dest.routing === 'discard' ? undefined : d.routing;
        this.indices.get(body.dest.index)!.docs.set(id, { source: structuredClone(d.source), routing });
        n++;
      }
    }
    return { total: n, created: n, updated: 0, failures: [] };
  }

  private deleteByQuery(index: string, body: { query: unknown }, _qs: Record<string, unknown>) {
    let n = 0;
    for (const t of this.resolve(index)) for (const [id] of this.matching(t, body.query)) n += this.indices.get(t.index)!.docs.delete(id) ? 1 : 0;
    return { deleted: n, failures: [] };
  }

  private cat(pattern: string) {
    return this.resolve(pattern).map((t) => ({ index: t.index, 'docs.count': String(this.catDocCounts.get(t.index) ?? this.indices.get(t.index)!.docs.size) }));
  }

  private search(name: string, body: Record<string, unknown>) {
    const targets = this.resolve(name);
    const query = body.query;
    let rows: Array<{ index: string; id: string; src: Source; score: number }> = [];
    for (const t of targets) for (const [id, d] of this.matching(t, query)) rows.push({ index: t.index, id, src: d.source, score: score(query, d.source) });
    const aggs = body.aggs as Record<string, { terms: { field: string; min_doc_count?: number } }> | undefined;
    let aggregations: Record<string, unknown> | undefined;
    if (aggs) {
      aggregations = {};
      for (const [k, a] of Object.entries(aggs)) {
        const counts = new Map<string, number>();
        for (const r of rows) counts.set(String(r.src[a.terms.field]), (counts.get(String(r.src[a.terms.field])) ?? 0) + 1);
        aggregations[k] = { buckets: [...counts].filter(([, c]) => c >= (a.terms.min_doc_count ?? 1)).map(([key, doc_count]) => ({ key, doc_count })) };
      }
    }
    const sort = (body.sort as Array<string | Record<string, string>> | undefined) ?? ['_score'];
    const keyOf = (r: (typeof rows)[number]) => sort.map((s) => (s === '_score' ? r.score : r.src[Object.keys(s)[0]!]) as number | string);
    const dirs = sort.map((s) => (s === '_score' ? -1 : Object.values(s)[0] === 'desc' ? -1 : 1));
    const cmp = (a: Array<number | string>, b: Array<number | string>) => {
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return (a[i]! < b[i]! ? -1 : 1) * dirs[i]!;
      return 0;
    };
    rows.sort((a, b) => cmp(keyOf(a), keyOf(b)));
    if (Array.isArray(body.search_after)) rows = rows.filter((r) => cmp(keyOf(r), body.search_after as Array<number | string>) > 0);
    const from = Number(body.from ?? 0);
    const size = Number(body.size ?? 10);
    const page = rows.slice(from, from + size);
    const hl = body.highlight as { fields: Record<string, { pre_tags: string[]; post_tags: string[] }> } | undefined;
    const words = new Set(queryWords(query));
    return {
      took: 1, timed_out: false,
      hits: {
        hits: page.map((r) => {
          const f = hl?.fields.text;
          const src = body._source ? Object.fromEntries((body._source as string[]).map((k) => [k, r.src[k]])) : r.src;
          return {
            _index: r.index, _id: r.id, _score: r.score, _source: src, sort: keyOf(r),
            ...(f ? { highlight: { text: [String(r.src.text).replace(/[\p{L}\p{N}]+/gu, (w) => (words.has(w.toLowerCase()) ? `${f.pre_tags[0]}${w}${f.post_tags[0]}` : w))] } } : {}),
          };
        }),
      },
      ...(aggregations ? { aggregations } : {}),
    };
  }
}

function queryWords(q: unknown): string[] {
  if (!q || typeof q !== 'object') return [];
  const [k, v] = Object.entries(q as Record<string, unknown>)[0] ?? [];
  if (k === 'bool') return ((v as { must?: unknown[] }).must ?? []).flatMap(queryWords);
  if (k === 'match') return tokens(String((Object.values(v as object)[0] as { query: string }).query));
  if (k === 'match_phrase') return tokens(String(Object.values(v as object)[0]));
  return [];
}

function score(q: unknown, src: Source): number {
  const words = queryWords(q);
  if (!words.length) return 0;
  const toks = tokens(String(src.text ?? ''));
  const tf = words.reduce((n, w) => n + toks.filter((t) => t === w).length, 0);
  return tf / Math.sqrt(toks.length || 1);
}

/** The DSL subset, evaluated on one document. */
export function matches(q: unknown, src: Source): boolean {
  const [k, v] = Object.entries(q as Record<string, unknown>)[0]!;
  switch (k) {
    case 'match_all':
      return true;
    case 'bool': {
      const b = v as { filter?: unknown[]; must?: unknown[] };
      return [...(b.filter ?? []), ...(b.must ?? [])].every((c) => matches(c, src));
    }
    case 'term': {
      const [f, val] = Object.entries(v as object)[0]!;
      return src[f] === val || (Array.isArray(src[f]) && (src[f] as unknown[]).includes(val));
    }
    case 'terms': {
      const [f, vals] = Object.entries(v as object)[0]!;
      return (vals as unknown[]).includes(src[f]);
    }
    case 'range': {
      const [f, r] = Object.entries(v as object)[0]! as [string, { gte?: number; lt?: number }];
      const x = Number(src[f]);
      return (r.gte === undefined || x >= r.gte) && (r.lt === undefined || x < r.lt);
    }
    case 'match': {
      const [f, m] = Object.entries(v as object)[0]! as [string, { query: string; operator?: string }];
      const toks = new Set(tokens(String(src[f] ?? '')));
      const want = tokens(m.query);
      return m.operator === 'and' ? want.every((w) => toks.has(w)) : want.some((w) => toks.has(w));
    }
    case 'match_phrase': {
      const [f, p] = Object.entries(v as object)[0]!;
      const toks = tokens(String(src[f] ?? ''));
      const want = tokens(String(p));
      return toks.some((_, i) => want.every((w, j) => toks[i + j] === w));
    }
    default:
      throw new Error(`fake elasticsearch: query ${k} not supported`);
  }
}
