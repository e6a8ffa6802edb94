export * from './prom-metrics.ts';
