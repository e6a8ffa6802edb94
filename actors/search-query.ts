/**
 * The search box syntax (docs/search.md), parsed into a SearchQuery:
 *
 *   deploy "release notes" in:general from:alice after:2026-01-01 has:file
 *
 * - bare words must all occur; `"..."` is a phrase;
 * - `in:<channel name or id>` (repeatable: any of them), `in:"name with spaces"`, `in:#general`;
 * - `from:<user id>` (repeatable), `from:@alice`, `from:me` (the caller);
 * - `after:YYYY-MM-DD` (strictly after that UTC day), `before:YYYY-MM-DD`
 *   (strictly before it), `on:YYYY-MM-DD` (that day); several narrow the range;
 * - `has:file`.
 * An unknown `key:value` is searched as a word; so is a malformed date.
 */
import type { SearchQuery } from './search.ts';

/** Longest query accepted by the protocol. */
export const MAX_QUERY_LENGTH = 500;
/** Most words plus phrases in one query (the rest are ignored). */
export const MAX_QUERY_TERMS = 32;

const DAY = 86_400_000;

function day(v: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
  if (!m) return undefined;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  const d = new Date(t);
  // Date.UTC rolls 2026-02-31 into March: refuse it
  return d.getUTCFullYear() === Number(m[1]) && d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3]) ? t : undefined;
}

/** Splits into tokens: `"a b"` and `key:"a b"` stay one token (quotes kept to tell phrases from words). */
function tokens(q: string): string[] {
  const out: string[] = [];
  const re = /(?:[A-Za-z]+:)?"[^"]*"?|[^\s"]+/g;
  for (const m of q.matchAll(re)) out.push(m[0]);
  return out;
}

const unquote = (s: string) => s.replace(/^"/, '').replace(/"$/, '');

/** Parses a query string; `me` is the caller, for `from:me`. Never throws. */
export function parseSearchQuery(text: string, me?: string): SearchQuery {
  const words: string[] = [];
  const phrases: string[] = [];
  const inCh: string[] = [];
  const from: string[] = [];
  let after: number | undefined;
  let before: number | undefined;
  let hasFile: boolean | undefined;
  const narrowAfter = (t: number) => { after = after === undefined ? t : Math.max(after, t); };
  const narrowBefore = (t: number) => { before = before === undefined ? t : Math.min(before, t); };
  const word = (w: string) => {
    // keep letters, digits and inner punctuation; a term of punctuation only matches nothing useful
    if (/[\p{L}\p{N}]/u.test(w)) words.push(w);
  };

  for (const tok of tokens(text.slice(0, MAX_QUERY_LENGTH))) {
    if (tok.startsWith('"')) {
      const p = unquote(tok).trim().replace(/\s+/g, ' ');
      if (/[\p{L}\p{N}]/u.test(p)) (p.includes(' ') ? phrases : words).push(p);
      continue;
    }
    const colon = tok.indexOf(':');
    const key = colon > 0 ? tok.slice(0, colon).toLowerCase() : '';
    const value = colon > 0 ? unquote(tok.slice(colon + 1)).trim() : '';
    switch (key) {
      case 'in':
        if (value) inCh.push(value.replace(/^#/, ''));
        continue;
      case 'from':
        if (value) from.push(value === 'me' && me ? me : value.replace(/^@/, ''));
        continue;
      case 'after': {
        const t = day(value);
        if (t !== undefined) { narrowAfter(t + DAY); continue; }
        break;
      }
      case 'before': {
        const t = day(value);
        if (t !== undefined) { narrowBefore(t); continue; }
        break;
      }
      case 'on':
      case 'during': {
        const t = day(value);
        if (t !== undefined) { narrowAfter(t); narrowBefore(t + DAY); continue; }
        break;
      }
      case 'has':
        if (value.toLowerCase() === 'file' || value.toLowerCase() === 'files') { hasFile = true; continue; }
        break;
    }
    word(tok);
  }
  const terms = [...words, ...phrases];
  const keep = new Set(terms.slice(0, MAX_QUERY_TERMS));
  return {
    words: [...new Set(words.filter((w) => keep.has(w)))],
    phrases: [...new Set(phrases.filter((p) => keep.has(p)))],
    in: [...new Set(inCh)],
    from: [...new Set(from)],
    ...(after !== undefined ? { after } : {}),
    ...(before !== undefined ? { before } : {}),
    ...(hasFile ? { hasFile } : {}),
  };
}

/** True when a query has no condition at all (then nothing is searched). */
export function isEmptyQuery(q: SearchQuery): boolean {
  return !q.words.length && !q.phrases.length && !q.in.length && !q.from.length && q.after === undefined && q.before === undefined && !q.hasFile;
}
