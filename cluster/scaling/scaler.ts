import type { Logger } from '../../runtime/index.ts';
import { silentLogger } from '../../runtime/index.ts';

/** The Scaler port: how a scale decision is applied. */
export interface Scaler {
  /** Replicas the platform runs now. */
  currentReplicas(): Promise<number>;
  /** Asks for `replicas`; `reason` is the decision's explanation (logged, annotated). */
  setReplicas(replicas: number, reason: string): Promise<void>;
}

/** Applies nothing: logs each decision (the default outside Kubernetes). */
export class LogScaler implements Scaler {
  readonly decisions: Array<{ replicas: number; reason: string }> = [];
  constructor(private replicas: number, private readonly logger: Logger = silentLogger) {}
  async currentReplicas(): Promise<number> {
    return this.replicas;
  }
  async setReplicas(replicas: number, reason: string): Promise<void> {
    this.decisions.push({ replicas, reason });
    this.logger.info({ from: this.replicas, to: replicas, reason }, 'scale decision (log only)');
    this.replicas = replicas;
  }
}

/** Where the Kubernetes API is and what to scale. */
export interface KubernetesScalerOptions {
  /** API server base URL, e.g. https://kubernetes.default.svc */
  apiUrl: string;
  /** Service-account bearer token. */
  token: string;
  namespace: string;
  deployment: string;
  /** Fetch implementation (tests, custom TLS). Default global fetch. */
  fetch?: typeof fetch;
}

/** Scales a Deployment through the Kubernetes API's scale subresource (PATCH .../deployments/<name>/scale). */
export class KubernetesScaler implements Scaler {
  private readonly f: typeof fetch;
  constructor(private readonly o: KubernetesScalerOptions) {
    this.f = o.fetch ?? fetch;
  }
  private url(): string {
    return `${this.o.apiUrl.replace(/\/$/, '')}/apis/apps/v1/namespaces/${encodeURIComponent(this.o.namespace)}/deployments/${encodeURIComponent(this.o.deployment)}/scale`;
  }
  async currentReplicas(): Promise<number> {
    const r = await this.f(this.url(), { headers: { authorization: `Bearer ${this.o.token}`, accept: 'application/json' } });
    if (!r.ok) throw new Error(`kubernetes: GET scale ${r.status} ${await r.text()}`);
    const body = (await r.json()) as { spec?: { replicas?: number } };
    return body.spec?.replicas ?? 0;
  }
  async setReplicas(replicas: number, reason: string): Promise<void> {
    if (!Number.isInteger(replicas) || replicas < 0) throw new RangeError(`replicas must be a non-negative integer, got ${replicas}`);
    const r = await this.f(this.url(), {
      method: 'PATCH',
      headers: { authorization: `Bearer ${this.o.token}`, 'content-type': 'application/merge-patch+json', accept: 'application/json' },
      body: JSON.stringify({ spec: { replicas }, metadata: { annotations: { 'chorus.dev/scale-reason': reason.slice(0, 250) } } }),
    });
    if (!r.ok) throw new Error(`kubernetes: PATCH scale ${r.status} ${await r.text()}`);
  }
}
