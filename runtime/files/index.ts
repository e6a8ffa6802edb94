/** The Files port: blob store, metadata catalog, upload guard and their errors. */
export * from './errors.ts';
export * from './file-catalog.ts';
export * from './file-store.ts';
export * from './upload-guard.ts';
