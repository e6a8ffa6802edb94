/** Adapters on the local machine with no server: the local-directory FileStore and SnapshotStore. */
export * from './local-file-store.ts';
export * from './file-snapshot-store.ts';
