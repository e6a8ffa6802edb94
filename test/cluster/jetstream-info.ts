import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsCluster } from '../helpers/nats.ts';

/** Where a JetStream stream's RAFT group stands, as its leader reports it. */
export interface StreamGroup {
  stream: string;
  leader: string | undefined;
  /** The followers (the leader is not listed), by server name. */
  replicas: Array<{ name: string; current: boolean; offline: boolean }>;
}

/**
 * A test-side NATS client for looking at JetStream placement (which server
 * leads which stream). It connects to every server of the cluster, so it
 * survives the kill of any one of them.
 */
export async function jetStreamProbe(nats: NatsCluster): Promise<{ group(stream: string): Promise<StreamGroup>; streams(): Promise<string[]>; close(): Promise<void>; nc: NatsConnection }> {
  const nc = await connect({ servers: nats.urls, reconnectTimeWait: 100, maxReconnectAttempts: -1, name: 'chorus-test-probe' });
  const jsm = await jetstreamManager(nc, { timeout: 3000 });
  return {
    nc,
    async group(stream) {
      const info = await jsm.streams.info(stream);
      return {
        stream,
        leader: info.cluster?.leader,
        replicas: (info.cluster?.replicas ?? []).map((r) => ({ name: r.name, current: r.current, offline: r.offline })),
      };
    },
    async streams() {
      const out: string[] = [];
      for await (const n of jsm.streams.names()) out.push(n);
      return out.sort();
    },
    close: () => nc.close(),
  };
}
