/**
 * Helpers shared by the benchmarks: bounded timing loops, allocation evidence (GC counts and
 * heap deltas), child processes, and printing tables. Nothing here asserts a time.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import type { ReplayObserver } from '../../src/replay/outcome.js';

/** Repository root (this file is dist/test/bench/util.js once built). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BENCH_DIST = path.join(ROOT, 'dist/test/bench');
/** The committed results: written only with `--save`. */
export const RESULTS = path.join(ROOT, 'test/bench/results');

/**
 * Where a benchmark writes its result files. The committed `test/bench/results/` only with `--save`,
 * so running the benchmarks leaves the work tree as it was and committed results change on purpose;
 * otherwise `$MR_BENCH_OUT`, or `mirror-replay-bench` in the system's temporary directory.
 */
export function resultsDir(argv: readonly string[] = process.argv, env: NodeJS.ProcessEnv = process.env): string {
  if (argv.includes('--save')) return RESULTS;
  return env.MR_BENCH_OUT ? path.resolve(env.MR_BENCH_OUT) : path.join(os.tmpdir(), 'mirror-replay-bench');
}

/** Writes `files` (file name → content) into `dir` and says where; returns the paths written. */
export function writeResults(files: Record<string, string>, dir: string = resultsDir()): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const written = Object.entries(files).map(([name, content]) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content);
    return file;
  });
  const hint = dir === RESULTS ? '' : ' (not the committed results: add --save for those)';
  console.log(`\nwrote ${Object.keys(files).join(', ')} to ${dir}${hint}`);
  return written;
}

export type Cell = string | number;
export type Row = Record<string, Cell>;

/** Prints rows as a markdown table (so the output can be pasted into README/results as is). */
export function printTable(title: string, rows: Row[], notes: string[] = []): void {
  process.stdout.write(`\n### ${title}\n\n${markdownTable(rows)}`);
  for (const n of notes) process.stdout.write(`\n${n}`);
  process.stdout.write('\n');
}

export function markdownTable(rows: Row[]): string {
  if (rows.length === 0) return '(no rows)\n';
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: Cell | undefined) => (v === undefined ? '' : typeof v === 'number' ? fmt(v) : v);
  const body = rows.map((r) => cols.map((c) => cell(r[c])));
  const w = cols.map((c, i) => Math.max(c.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ')} |\n`;
  return line(cols) + `|${w.map((x, i) => (i === 0 ? '-'.repeat(x + 2) : `${'-'.repeat(x + 1)}:`)).join('|')}|\n` + body.map(line).join('');
}

/** Numbers with a sensible number of digits and thousands separators. */
export function fmt(n: number, digits?: number): string {
  if (!Number.isFinite(n)) return String(n);
  const d = digits ?? (Math.abs(n) >= 100 || Number.isInteger(n) ? 0 : Math.abs(n) >= 10 ? 1 : 2);
  return n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

export function ratio(a: number, b: number): string {
  return b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a';
}

export interface Bounds {
  /** Stop after this many iterations... */
  maxIters: number;
  /** ...or this many milliseconds, whichever comes first (checked every `batch` iterations). */
  maxMs: number;
  batch?: number;
}

/** Runs `fn(i)` in batches until a bound is hit; returns iterations done and elapsed ns. */
export function timeLoop(b: Bounds, fn: (i: number) => void): { iters: number; ns: number } {
  const batch = b.batch ?? 10_000;
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(Math.round(b.maxMs * 1e6));
  let i = 0;
  while (i < b.maxIters) {
    const end = Math.min(b.maxIters, i + batch);
    for (; i < end; i++) fn(i);
    if (process.hrtime.bigint() > deadline) break;
  }
  return { iters: i, ns: Number(process.hrtime.bigint() - t0) };
}

const gc = (globalThis as { gc?: () => void }).gc;

/**
 * Runs `fn` (a bounded loop, already warmed up; returns its iteration count) and reports the
 * evidence of allocation: GCs during the run, and JS heap bytes allocated per iteration, summed
 * from v8.GCProfiler's before/after figures of each GC (so GCs do not hide allocation).
 * Buffer backing stores live outside the JS heap: their Buffer objects are counted, not their bytes.
 */
export async function allocationProbe(fn: () => number): Promise<{ iters: number; scavenges: number; majorGcs: number; heapBytesPerIter: number }> {
  gc?.();
  gc?.();
  const prof = new v8.GCProfiler();
  const used0 = v8.getHeapStatistics().used_heap_size;
  prof.start();
  const iters = fn();
  const used1 = v8.getHeapStatistics().used_heap_size;
  const res = prof.stop();
  let allocated = 0;
  let prevAfter = used0;
  let scavenges = 0;
  let majorGcs = 0;
  for (const s of res?.statistics ?? []) {
    if (/scavenge|minor/i.test(s.gcType)) scavenges++;
    else majorGcs++;
    allocated += s.beforeGC.heapStatistics.usedHeapSize - prevAfter;
    prevAfter = s.afterGC.heapStatistics.usedHeapSize;
  }
  allocated += used1 - prevAfter;
  return { iters, scavenges, majorGcs, heapBytesPerIter: allocated / Math.max(1, iters) };
}

export function hasTool(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export const isRoot = process.getuid?.() === 0;

/** Starts the minimal HTTP sink (sink.js) in its own process; resolves with its port. */
export async function startSink(): Promise<{ port: number; url: string; child: ChildProcess; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [path.join(BENCH_DIST, 'sink.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error('sink did not start within 10 s')), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /listening (\d+)/.exec(buf);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (c) => reject(new Error(`sink exited with ${c}`)));
  });
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    child,
    stop: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null) return r();
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

/** CPU seconds (user+system) of a process from /proc; 0 when it is gone. */
/**
 * CPU time of every thread of `pid` as the scheduler measured it (/proc/PID/task/TID/schedstat, ns),
 * not sampled at ticks like utime + stime on this kernel (CONFIG_TICK_CPU_ACCOUNTING, 100 Hz): a
 * process that runs in ~1 ms bursts gets ±20% from tick sampling over a few seconds. Like the ticks,
 * it includes the interrupts that ran while the process did. Threads that ended are not counted.
 */
export function procRuntimeSeconds(pid: number): number {
  let ns = 0;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    return 0;
  }
  return ns / 1e9;
}

export function procCpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Parses `--name value` and bare flags after the benchmark name. */
export function benchArgs(): { flag(name: string): boolean; opt(name: string, dflt: string): string } {
  const argv = process.argv.slice(2);
  return {
    flag: (n) => argv.includes(`--${n}`),
    opt: (n, d) => {
      const eq = argv.find((a) => a.startsWith(`--${n}=`)); // `--workers=2`: run.ts takes bare words for bench names
      if (eq) return eq.slice(n.length + 3);
      const i = argv.indexOf(`--${n}`);
      return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
    },
  };
}

/** `--quick` (or BENCH_QUICK=1) shortens every benchmark, for a smoke run. */
export const QUICK = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';

/** What a client loop did: exchanges done and failed, wall ms, and the process's CPU ms (user + system). */
export interface ClientRun {
  done: number;
  errors: number;
  ms: number;
  cpuMs: number;
}

/** Closed loop over `conns` slots: `one(ok, fail)` starts one exchange and calls exactly one of them. */
export function closedLoop(one: (ok: () => void, fail: () => void) => void, n: number, maxMs: number, conns: number): Promise<ClientRun> {
  return new Promise((resolve) => {
    let started = 0;
    let done = 0;
    let errors = 0;
    let inflight = 0;
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const deadline = t0 + maxMs;
    const ok = () => {
      done++;
      inflight--;
      next();
    };
    const fail = () => {
      errors++;
      inflight--;
      next();
    };
    const next = () => {
      while (inflight < conns && started < n && performance.now() < deadline) {
        started++;
        inflight++;
        one(ok, fail);
      }
      if (inflight === 0) {
        const cpu = process.cpuUsage(c0);
        resolve({ done, errors, ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1e3 });
      }
    };
    next();
  });
}

/**
 * A replay observer for closedLoop: each exchange started pushes its [ok, fail] to `pending`, and
 * Destination's outcomes settle them. Completion order is not send order across connections, but
 * the callbacks are interchangeable: each only counts one outcome.
 */
export function settlingObserver(): { obs: ReplayObserver; pending: Array<[() => void, () => void]> } {
  const pending: Array<[() => void, () => void]> = [];
  const obs: ReplayObserver = {
    replayed: () => pending.shift()![0](),
    dropped: () => pending.shift()![1](),
    error: () => {},
    altered: () => {},
  };
  return { obs, pending };
}
