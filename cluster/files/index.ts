/** Files: upload service, replication over two providers, tiering, and the composition of the files part of a node. */
export * from './file-service.ts';
export * from './replicated-file-store.ts';
export * from './start-files.ts';
export * from './tiering.ts';
export * from './cached-file-catalog.ts';
