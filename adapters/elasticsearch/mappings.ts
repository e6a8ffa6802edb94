/**
 * Explicit mappings (`dynamic: 'strict'`: a document with an unknown field is
 * refused instead of growing the mapping) and index settings.
 */

/** Mappings of every message index (shared and dedicated). */
export const MESSAGE_MAPPINGS = Object.freeze({
  dynamic: 'strict',
  _routing: { required: false },
  properties: {
    ws: { type: 'keyword' },
    ch: { type: 'keyword' },
    seq: { type: 'long' },
    user: { type: 'keyword' },
    ts: { type: 'date', format: 'epoch_millis' },
    // english: lower case, stems and stop words, like the PostgreSQL implementation's 'english' configuration
    text: { type: 'text', analyzer: 'english' },
    parent: { type: 'long' },
    edited_at: { type: 'date', format: 'epoch_millis' },
    has_file: { type: 'boolean' },
    reaction_emojis: { type: 'keyword' },
    // kept in _source to rebuild the document on the next reaction; never searched
    reactions: { type: 'object', enabled: false },
  },
} as const);

/** Mappings of the positions index: one document per log stream. */
export const POSITIONS_MAPPINGS = Object.freeze({
  dynamic: 'strict',
  properties: {
    stream: { type: 'keyword' },
    ws: { type: 'keyword' },
    pos: { type: 'long' },
    updated_at: { type: 'date', format: 'epoch_millis' },
  },
} as const);

/** Index settings: shards, replicas, refresh interval. */
export function indexSettings(shards: number, replicas: number, refresh: string): Record<string, unknown> {
  return { number_of_shards: shards, number_of_replicas: replicas, refresh_interval: refresh };
}
