/**
 * Drives the namespace lab (scripts/lab-net.sh) for `npm run lab` and the end-to-end tests:
 * production and test recorders, the daemon on the adapter, real clients. Every process it
 * starts is tracked by PID and stopped in down(), which also deletes the namespaces.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_ENV, NODE_FLAGS } from '../../src/cli/node-flags.js';

/** Repository root (this file is dist/scripts/lab/harness.js once built). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const NODE = process.execPath;
const LAB_NET = path.join(ROOT, 'scripts/lab-net.sh');
const VXLAN_UP = path.join(ROOT, 'scripts/vxlan-up.sh');
const DAEMON = path.join(ROOT, 'dist/src/cli/main.js');
const RECORDER = path.join(ROOT, 'dist/scripts/lab/recorder.js');
const CLIENT = path.join(ROOT, 'dist/scripts/lab/client.js');

export const PROD_V4 = '10.213.1.2';
export const PROD_V6 = 'fd00:213:1::2';
export const TEST_HOST = '10.213.3.2';
export const METRICS = 'http://127.0.0.1:9464';

/** The four namespaces of lab-net.sh, and extra adapters a test adds with addAdapter(). */
export type Role = 'client' | 'prod' | 'adapter' | 'test' | `adapter-${string}`;

export interface ClientResult {
  ids: string[];
  failures: string[];
  seconds: number;
  rps: number;
}

export class Lab {
  readonly dir: string;
  readonly prodLog: string;
  readonly testLog: string;
  readonly daemonLog: string;
  private readonly procs = new Map<number, ChildProcess>();
  /** Namespaces made by addAdapter(), deleted in down(). */
  private readonly extra = new Set<Role>();
  daemon: ChildProcess | null = null;

  constructor(readonly prefix: string) {
    if (!/^mr[A-Za-z0-9._-]*$/.test(prefix)) throw new Error(`lab prefix must start with "mr": ${prefix}`);
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
    this.prodLog = path.join(this.dir, 'prod.jsonl');
    this.testLog = path.join(this.dir, 'test.jsonl');
    this.daemonLog = path.join(this.dir, 'daemon.log');
  }

  ns(role: Role): string {
    return `${this.prefix}-${role}`;
  }

  run(role: Role | null, cmd: string, args: string[], timeoutMs = 30_000): { status: number | null; stdout: string; stderr: string } {
    const full = role ? ['netns', 'exec', this.ns(role), cmd, ...args] : args;
    const r = spawnSync(role ? 'ip' : cmd, full, { encoding: 'utf8', timeout: timeoutMs });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** As run(), but throws with the output when the command fails. */
  must(role: Role | null, cmd: string, args: string[]): string {
    const r = this.run(role, cmd, args);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
    return r.stdout;
  }

  spawnIn(role: Role, cmd: string, args: string[], out?: string, env: Record<string, string> = {}): ChildProcess {
    const fd = out ? fs.openSync(out, 'a') : 'ignore';
    const p = spawn('ip', ['netns', 'exec', this.ns(role), cmd, ...args], { stdio: ['ignore', out ? fd : 'pipe', out ? fd : 'pipe'], env: { ...process.env, ...env } });
    if (typeof fd === 'number') fs.closeSync(fd);
    if (p.pid) this.procs.set(p.pid, p);
    p.on('exit', () => p.pid && this.procs.delete(p.pid));
    return p;
  }

  /** `vxlan0: false`: the adapter gets no VXLAN interface (the daemon decapsulates with --encap-interface eth0). */
  async up(opts: { vxlan0?: boolean } = {}): Promise<void> {
    this.must(null, 'bash', [LAB_NET, 'up', this.prefix, '--quiet']);
    if (opts.vxlan0 !== false) this.must('adapter', 'bash', [VXLAN_UP, '--vni', '1']);
  }

  /**
   * One more adapter namespace, `PREFIX-adapter-NAME`, linked to the lab's adapter namespace by a
   * veth (mtu 9001): `addr` (e.g. 10.213.4.2/24) here, `gw` (10.213.4.1/24) on the lab adapter's
   * side, named `lbDev`, and a default route through it. Deleted by down().
   */
  addAdapter(name: string, addr: string, gw: string, lbDev: string): Role {
    const role: Role = `adapter-${name}`;
    this.must(null, 'ip', ['netns', 'add', this.ns(role)]);
    this.extra.add(role);
    this.must(role, 'ip', ['link', 'set', 'lo', 'up']);
    this.must(null, 'ip', ['link', 'add', lbDev, 'netns', this.ns('adapter'), 'mtu', '9001', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.ns(role), 'mtu', '9001']);
    this.must('adapter', 'ip', ['addr', 'add', gw, 'dev', lbDev]);
    this.must(role, 'ip', ['addr', 'add', addr, 'dev', 'eth0']);
    this.must('adapter', 'ip', ['link', 'set', lbDev, 'up']);
    this.must(role, 'ip', ['link', 'set', 'eth0', 'up']);
    this.must(role, 'ip', ['route', 'add', 'default', 'via', gw.split('/')[0], 'dev', 'eth0']);
    return role;
  }

  /**
   * `testArgs`: more recorder flags for the test environment, e.g. ['--listen', '10.213.3.2:81', '--blackhole', '10.213.3.2:83'];
   * `prodArgs`: more for production, e.g. ['--tls-listen', '10.213.1.2:443', '--cert', C, '--key', K].
   */
  async startRecorders(testArgs: string[] = [], prodArgs: string[] = []): Promise<void> {
    const prod = this.spawnIn('prod', NODE, [RECORDER, '--out', this.prodLog, '--listen', `${PROD_V4}:80`, '--listen', `[${PROD_V6}]:80`, ...prodArgs]);
    const test = this.spawnIn('test', NODE, [RECORDER, '--out', this.testLog, '--listen', `${TEST_HOST}:80`, ...testArgs]);
    await Promise.all([waitForLine(prod, 'ready', 10_000), waitForLine(test, 'ready', 10_000)]);
  }

  /**
   * Starts the daemon on the adapter (or on `opts.role`, logging to `opts.log`) and waits until
   * /readyz answers (capture bound). Only the lab adapter's daemon is `this.daemon`.
   */
  async startDaemon(extra: string[] = [], opts: { destinations?: string[]; role?: Role; log?: string } = {}): Promise<ChildProcess> {
    const role = opts.role ?? 'adapter';
    const log = opts.log ?? this.daemonLog;
    const dests = (opts.destinations ?? [`http://${TEST_HOST}`]).flatMap((d) => ['-destination', d]);
    const args = [DAEMON, ...dests, '--metrics-host', '127.0.0.1', '--metrics-port', '9464', '--log-level', 'warn', ...extra];
    const daemon = this.spawnIn(role, NODE, [...NODE_FLAGS, ...args], log, NODE_ENV);
    if (role === 'adapter') this.daemon = daemon;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (daemon.exitCode !== null) throw new Error(`daemon exited with ${daemon.exitCode}: ${fs.readFileSync(log, 'utf8')}`);
      const r = this.run(role, 'curl', ['-sf', '-m', '2', `${METRICS}/readyz`]);
      if (r.status === 0) return daemon;
      await sleep(200);
    }
    throw new Error(`daemon did not become healthy: ${fs.readFileSync(log, 'utf8')}`);
  }

  async client(mode: 'behaviours' | 'load' | 'policy', extra: string[] = [], timeoutMs = 180_000): Promise<ClientResult> {
    const p = this.spawnIn('client', NODE, [CLIENT, mode, '--host', PROD_V4, '--host6', PROD_V6, ...extra]);
    let out = '';
    let err = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => {
        p.kill('SIGKILL');
        resolve(null);
      }, timeoutMs);
      p.on('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    if (code !== 0) throw new Error(`client ${mode} failed (${code}): ${err}`);
    return JSON.parse(out.trim().split('\n').pop()!) as ClientResult;
  }

  /** The daemon's /metrics as name{labels} -> value. */
  metrics(role: Role = 'adapter'): Map<string, number> {
    const r = this.run(role, 'curl', ['-sf', '-m', '5', `${METRICS}/metrics`]);
    const m = new Map<string, number>();
    for (const line of r.stdout.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const i = line.lastIndexOf(' ');
      m.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
    return m;
  }

  /** Sum over every series of a metric whose labels contain `match`. */
  metric(name: string, match = '', role: Role = 'adapter'): number {
    let sum = 0;
    for (const [k, v] of this.metrics(role)) if ((k === name || k.startsWith(`${name}{`)) && k.includes(match)) sum += v;
    return sum;
  }

  lines(file: string): number {
    if (!fs.existsSync(file)) return 0;
    const s = fs.readFileSync(file, 'utf8');
    let n = 0;
    for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
    return n;
  }

  /** Waits until the test environment has as many records as production, or the time is up. */
  async waitForTest(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    let stableSince = Date.now();
    while (Date.now() < deadline) {
      const p = this.lines(this.prodLog);
      const t = this.lines(this.testLog);
      if (t >= p && p > 0) return;
      if (t !== last) {
        last = t;
        stableSince = Date.now();
      } else if (Date.now() - stableSince > 5_000) return; // nothing moving any more
      await sleep(100);
    }
  }

  /** CPU seconds and peak RSS of the daemon, from /proc. */
  daemonUsage(): { cpuSeconds: number; peakRssMiB: number; rssMiB: number } {
    const pid = this.daemon?.pid;
    if (!pid) return { cpuSeconds: 0, peakRssMiB: 0, rssMiB: 0 };
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return { cpuSeconds: ticks / 100, peakRssMiB: kb('VmHWM') / 1024, rssMiB: kb('VmRSS') / 1024 };
  }

  /** Freezes every thread of the daemon (SIGSTOP) for `ms`, then lets it go on (SIGCONT). */
  async freezeDaemon(ms: number): Promise<void> {
    const pid = this.daemon?.pid;
    if (!pid || this.daemon!.exitCode !== null) throw new Error('the daemon is not running');
    process.kill(pid, 'SIGSTOP');
    try {
      await sleep(ms);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  }

  /** Stops the daemon (or `d`, another daemon this lab started) with SIGTERM and waits for its exit code. */
  async stopDaemon(timeoutMs = 15_000, d = this.daemon): Promise<number | null> {
    if (!d || d.exitCode !== null) return d?.exitCode ?? null;
    d.kill('SIGTERM');
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        d.kill('SIGKILL');
        resolve(null);
      }, timeoutMs);
      d.on('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
  }

  /** Stops every process this lab started (by PID) and deletes the namespaces. Always safe. */
  async down(keepDir = false): Promise<void> {
    for (const p of this.procs.values()) if (p.exitCode === null) p.kill('SIGTERM');
    const deadline = Date.now() + 5_000;
    while (this.procs.size && Date.now() < deadline) await sleep(50);
    for (const p of this.procs.values()) p.kill('SIGKILL');
    spawnSync('bash', [LAB_NET, 'down', this.prefix], { stdio: 'ignore', timeout: 30_000 });
    for (const role of this.extra) spawnSync('ip', ['netns', 'del', this.ns(role)], { stdio: 'ignore', timeout: 30_000 });
    if (!keepDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function waitForLine(p: ChildProcess, text: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`no "${text}" within ${timeoutMs} ms: ${buf}`)), timeoutMs);
    const on = (d: Buffer) => {
      buf += d.toString();
      if (buf.includes(text)) {
        clearTimeout(t);
        resolve();
      }
    };
    p.stdout?.on('data', on);
    p.stderr?.on('data', on);
    p.on('exit', (c) => {
      clearTimeout(t);
      reject(new Error(`exited with ${c} before "${text}": ${buf}`));
    });
  });
}
