export * from './push-notifier.ts';
export * from './providers.ts';
export * from './kv-push-settings.ts';
