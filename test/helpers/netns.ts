import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A Linux network namespace joined to the host by a veth pair on a private
 * /30 (10.231.<n>.1 on the host side, 10.231.<n>.2 inside), with `lo` up
 * inside. A process started with the `exec` prefix lives in it: it reaches
 * the host only through the veth, so `cut()` takes it off the network (its
 * packets go nowhere, nothing is refused) and `heal()` puts it back.
 * Disposing removes the veth pair, the namespace and the safety route, also
 * after a failure; if the test process exits without disposing, an exit
 * handler removes them.
 */
export interface NetNs extends AsyncDisposable {
  /** The namespace's name (`chorus-<pid>`). */
  readonly name: string;
  /** The veth end on the host, and the one inside the namespace. */
  readonly hostVeth: string;
  readonly nsVeth: string;
  /** The host side's address (servers the namespace must reach listen here) and the namespace's own address. */
  readonly hostIp: string;
  readonly nsIp: string;
  /** Prefix of a command run inside the namespace: `ip netns exec <name>`. */
  readonly exec: readonly string[];
  /** True between cut() and heal(). */
  readonly isCut: boolean;
  /**
   * Cuts the namespace off: its end of the veth goes down. Packets from the
   * host to the namespace are dropped silently (the host's end stays up
   * without a carrier, so its route still points at the veth), and the
   * namespace has no route out at all. Established TCP connections are not
   * reset: they stall, as over a cut cable.
   *
   * Not the host's end: with the host veth down, the host loses its route to
   * the /30 and sends the namespace's packets to the default gateway (on
   * this machine something there answered HTTP). The blackhole route added
   * at creation keeps even that case from leaking, but the namespace side
   * is the clean cut.
   */
  cut(): Promise<void>;
  /** Brings the namespace's end of the veth back up. */
  heal(): Promise<void>;
  /** Removes the veth pair, the namespace and the safety route; never throws. */
  dispose(): Promise<void>;
}

/** Thrown by createNetNs when this machine cannot make namespaces (not Linux, no `ip`, not root / no CAP_NET_ADMIN). */
export class NetNsUnavailable extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'NetNsUnavailable';
  }
}

async function ip(...args: string[]): Promise<string> {
  try {
    const r = await run('ip', args, { timeout: 10_000 });
    return r.stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/**
 * Creates a namespace with a unique name (from the pid) and a free
 * 10.231.<n>.0/30. Throws NetNsUnavailable (with the reason, for t.skip)
 * when `ip netns add` is impossible here; any later failure is an error,
 * after removing what was made.
 */
export async function createNetNs(): Promise<NetNs> {
  if (process.platform !== 'linux') throw new NetNsUnavailable(`network namespaces need Linux (this is ${process.platform})`);
  const pid = process.pid;
  const name = `chorus-${pid}`;
  const hostVeth = `chv${pid}h`;
  const nsVeth = `chv${pid}n`;
  try {
    await ip('netns', 'add', name);
  } catch (err) {
    const msg = (err as Error).message;
    throw new NetNsUnavailable(/ENOENT|spawn ip/.test(msg) ? 'the `ip` command (iproute2) is not installed' : `\`ip netns add\` failed (needs root or CAP_NET_ADMIN): ${msg}`);
  }
  // from here on every resource made is removed again on failure and on dispose
  let subnet: string | undefined;
  let blackhole = false;
  const steps = (): string[][] => [
    ...(blackhole && subnet ? [['route', 'del', 'blackhole', `${subnet}.0/30`, 'metric', '4000']] : []),
    ['link', 'del', hostVeth], // removes its peer in the namespace too
    ['netns', 'del', name],
  ];
  const remove = async () => {
    for (const s of steps()) await ip(...s).catch(() => undefined);
  };
  const onExit = () => {
    for (const s of steps()) spawnSync('ip', s, { stdio: 'ignore', timeout: 5000 });
  };
  process.once('exit', onExit);
  let isCut = false;
  try {
    // a /30 no interface of the host uses yet, starting from the pid
    const used = await ip('-4', '-o', 'addr', 'show');
    let n = (pid % 250) + 1;
    for (let tries = 0; used.includes(`10.231.${n}.`); tries++) {
      if (tries > 250) throw new Error('no free 10.231.<n>.0/30 subnet');
      n = (n % 250) + 1;
    }
    subnet = `10.231.${n}`;
    const hostIp = `${subnet}.1`;
    const nsIp = `${subnet}.2`;
    await ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', nsVeth);
    await ip('link', 'set', nsVeth, 'netns', name);
    await ip('addr', 'add', `${hostIp}/30`, 'dev', hostVeth);
    await ip('link', 'set', hostVeth, 'up');
    // if the host's route to the /30 ever goes (its veth down), drop the packets rather than send them to the default gateway
    await ip('route', 'add', 'blackhole', `${subnet}.0/30`, 'metric', '4000');
    blackhole = true;
    await ip('-n', name, 'addr', 'add', `${nsIp}/30`, 'dev', nsVeth);
    await ip('-n', name, 'link', 'set', nsVeth, 'up');
    await ip('-n', name, 'link', 'set', 'lo', 'up');
    let disposed = false;
    const dispose = async () => {
      if (disposed) return;
      disposed = true;
      await remove();
      process.removeListener('exit', onExit);
    };
    return {
      name, hostVeth, nsVeth, hostIp, nsIp,
      exec: ['ip', 'netns', 'exec', name],
      get isCut() { return isCut; },
      cut: async () => { await ip('-n', name, 'link', 'set', nsVeth, 'down'); isCut = true; },
      heal: async () => { await ip('-n', name, 'link', 'set', nsVeth, 'up'); isCut = false; },
      dispose,
      [Symbol.asyncDispose]: dispose,
    };
  } catch (err) {
    await remove();
    process.removeListener('exit', onExit);
    // a namespace without the right to make links (CAP_SYS_ADMIN but not CAP_NET_ADMIN), or a kernel without veth
    const msg = (err as Error).message;
    if (/Operation not permitted|Unknown device type|not supported/i.test(msg)) throw new NetNsUnavailable(`setting up the veth pair failed (needs CAP_NET_ADMIN and veth): ${msg}`);
    throw err;
  }
}
