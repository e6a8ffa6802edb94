/**
 * `npm start`: runs one Chorus node. The profile and every setting come from
 * CHORUS_* environment variables (cluster/config.ts); with none set it runs
 * the embedded profile on http://127.0.0.1:8080 with data under ./data.
 */
import { configFromEnv, ConfigError } from './config.ts';
import { startNode } from './bootstrap.ts';
import { seedDemo } from './edge/demo-workspace.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = configFromEnv();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const running = await startNode(config, { onDrained: () => process.exit(0) });
  console.log(`Chorus ${config.profile} node ${config.nodeId} on ${running.url}  (health: ${running.url}/healthz, metrics: ${running.url}/metrics)`);
  if (config.profile === 'embedded' && config.devSignIn) {
    await seedDemo(running.node).then(
      () => console.log(`Demo workspace ready: open ${running.url}/ in two browser windows and sign in with two names`),
      (err: unknown) => console.error(`could not seed the demo workspace (the first sign-in creates it): ${(err as Error).message}`),
    );
  }
  let signals = 0;
  const shutdown = (signal: string) => {
    if (signals++ > 0) process.exit(1);
    const work = signal === 'SIGUSR2' ? running.drain() : running.stop();
    work.then(() => process.exit(0), (err) => {
      console.error(err);
      process.exit(1);
    });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // SIGUSR2: drain (hand every actor off), then exit
  process.on('SIGUSR2', () => shutdown('SIGUSR2'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
