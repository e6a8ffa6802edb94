/** A thin client of a node's /admin endpoints (operator token required). */
export class AdminClient {
  constructor(readonly baseUrl: string, private readonly token: string, private readonly timeoutMs = 5000) {}

  async get<T>(path: string, base = this.baseUrl): Promise<T> {
    return this.call<T>('GET', path, base);
  }
  async post<T>(path: string, base = this.baseUrl): Promise<T> {
    return this.call<T>('POST', path, base);
  }
  private async call<T>(method: string, path: string, base: string): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${base.replace(/\/$/, '')}${path}`, { method, headers: { authorization: `Bearer ${this.token}` }, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new InspectorError(`cannot reach ${base}: ${(err as Error).message}`);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new InspectorError(`${base}${path}: HTTP ${res.status}, not JSON`);
    }
    if (!res.ok) {
      const e = body as { code?: string; message?: string };
      throw new InspectorError(`${base}${path}: ${e.code ?? res.status} ${e.message ?? ''}`.trim());
    }
    return body as T;
  }
}

/** A failure the CLI reports in one line and exits non-zero for. */
export class InspectorError extends Error {}

/** /admin/placement */
export interface PlacementView {
  node: string;
  leader?: string;
  table: { epoch: number; members: Array<{ id: string; weight: number }>; overrides: Record<string, string>; prev?: unknown };
  members: Array<{ id: string; weight: number; region: string; state: string; startedAt: number; lastSeen: number; load: Record<string, number>; url?: string }>;
  history: Array<{ epoch: number; at: number; by: string; reason: string; members: Array<{ id: string }> }>;
  connections: number;
}

/** /admin/actors */
export interface ActorsView { node: string; epoch: number; fenced: boolean; actors: string[] }
