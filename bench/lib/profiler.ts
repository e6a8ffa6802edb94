/**
 * CPU profiles of a chosen window inside a bench server (node's inspector;
 * the same .cpuprofile format as `node --cpu-prof`, which covers the whole
 * process life instead): the bench calls `profileStart`, runs a phase, then
 * `profileStop` with a file name.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

let session: Session | undefined;
const post = (method: string, params?: object) => new Promise<unknown>((resolve, reject) => {
  session!.post(method, params ?? {}, (err, r) => (err ? reject(err) : resolve(r)));
});

/** RPC handlers `profileStart` and `profileStop({ file })`. */
export const profileHandlers = {
  heapSnapshot: (a: { file: string }) => heapSnapshot(a),
  async profileStart(args: { intervalUs?: number } = {}): Promise<boolean> {
    session = new Session();
    session.connect();
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: args.intervalUs ?? 200 });
    await post('Profiler.start');
    return true;
  },
  async profileStop(args: { file: string }): Promise<string> {
    const r = (await post('Profiler.stop')) as { profile: unknown };
    writeFileSync(args.file, JSON.stringify(r.profile));
    session!.disconnect();
    session = undefined;
    return args.file;
  },
};

/** RPC handler `heapSnapshot({ file })` (writes a .heapsnapshot; for finding what a connection keeps). */
export async function heapSnapshot(args: { file: string }): Promise<string> {
  const { writeHeapSnapshot } = await import('node:v8');
  return writeHeapSnapshot(args.file);
}
