/**
 * Offline pipeline: a generated pcap in, replayed requests out, the whole daemon (startDaemon
 * with --pcap) in this one process, replaying to the node:net sink in another process.
 * Requests/s for small GETs, 4 KB POSTs and 1 MB POSTs over 64 keep-alive connections, each
 * frame at most one MSS. The pcap is read as fast as the daemon takes it, so --max-queue is set
 * to the request count: the figure is the pipeline's own speed, not queue_full drops.
 * Baseline in the same run: Destination alone (the replay stage) and an undici Pool sending the
 * same small GET to the same sink.
 *
 * `--profile`: also profile the small-GET run (node:inspector, 100 µs sampling) and print the
 * top functions by self time and the time per stage; the .cpuprofile is kept for a flame graph.
 * `--alloc`: instead, sample what the small-GET run allocates (V8's sampling heap profiler, also
 * counting objects the GC has freed since) and print bytes per request by function and by stage:
 * what the young generation churns through, which sets how often it is scavenged.
 */
import fs from 'node:fs';
import inspector from 'node:inspector';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { PcapFileSource } from '../../src/capture/pcap.js';
import { Recorder } from '../../src/capture/record.js';
import { DEFAULTS, type Config } from '../../src/config/config.js';
import { startDaemon } from '../../src/daemon.js';
import { buildFrame, pcapFile, TCP_ACK, TCP_PSH, TCP_SYN } from '../fixtures/frames.js';
import { destination, undiciPool } from './replay.js';
import { benchArgs, fmt, printTable, QUICK, ratio, ROOT, startSink, type Row } from './util.js';

const MSS = 1448;
const CONNS = 64;

const GET =
  'GET /api/v1/items?id=12345&view=full HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) bench/1.0\r\n' +
  'Accept: application/json\r\nAccept-Encoding: gzip, deflate\r\nCookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n\r\n';

function postBytes(bodyLen: number): Buffer {
  const head = `POST /api/v1/upload HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: bench/1.0\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bodyLen}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.alloc(bodyLen, 0x61)]);
}

/**
 * `requests` copies of `request`, spread round-robin over CONNS connections that each start
 * with a SYN; every request is cut into MSS-sized frames, interleaved across connections.
 */
export function pipelinePcap(request: Buffer, requests: number, conns = CONNS): Buffer {
  const frames: Buffer[] = [];
  const seq = new Array<number>(conns).fill(0);
  const conn = (c: number) => ({ src: `10.9.${c >> 8}.${c & 255}`, dst: '10.0.0.80', sport: 30000 + c, dport: 80 });
  for (let c = 0; c < Math.min(conns, requests); c++) {
    seq[c] = (0x7fff0000 + c * 7919) >>> 0;
    frames.push(buildFrame({ ...conn(c), seq: seq[c], flags: TCP_SYN }));
    seq[c] = (seq[c] + 1) >>> 0;
  }
  // Frames of one request template, built once and patched per connection would be faster, but
  // buildFrame keeps checksums right; generation is not timed.
  for (let r = 0; r < requests; r++) {
    const c = r % conns;
    for (let o = 0; o < request.length; o += MSS) {
      const payload = request.subarray(o, Math.min(o + MSS, request.length));
      frames.push(buildFrame({ ...conn(c), seq: seq[c], ack: 1, flags: TCP_ACK | TCP_PSH, payload }));
      seq[c] = (seq[c] + payload.length) >>> 0;
    }
  }
  return pcapFile(frames);
}

/** "12 queue_full, 3 timeout", or 0. */
export async function droppedByReason(registry: { getSingleMetric(name: string): { get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> } | undefined }): Promise<string | number> {
  const m = registry.getSingleMetric('mirror_replay_requests_dropped_total');
  const vals = m ? (await m.get()).values.filter((v) => v.value > 0) : [];
  return vals.length ? vals.map((v) => `${v.value} ${String(v.labels.reason)}`).join(', ') : 0;
}

interface Profile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }>;
  startTime: number;
  endTime: number;
  samples?: number[];
}

function stageOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'V8/native (program)';
  const m = /\/(?:dist\/)?src\/([a-z]+)\//.exec(url) ?? /\/(?:dist\/)?src\/(daemon)\.js/.exec(url);
  if (m) return `src/${m[1]}`;
  if (/node:internal\/(http|_http)|node:_http|node:http/.test(url)) return 'node:http';
  if (/node:internal\/(net|stream|streams)|node:net|node:stream/.test(url)) return 'node:net/streams';
  if (/prom-client/.test(url)) return 'prom-client';
  if (/^node:/.test(url)) return 'node:other';
  return url ? 'other JS' : 'native';
}

/** "name file:line" of a profile's call frame, the file relative to the repository or node_modules. */
function functionKey(cf: { functionName: string; url: string; lineNumber: number }): string {
  const file = cf.url.replace(`file://${ROOT}/`, '').replace(/^file:\/\/.*\/node_modules\//, '');
  return `${cf.functionName || '(anonymous)'} ${file ? `${file}:${cf.lineNumber + 1}` : ''}`.trim();
}

/** Top functions by self time, and self time per stage. */
export function summarize(p: Profile, top = 15): { functions: Row[]; stages: Row[] } {
  const hits = new Map<number, number>();
  for (const s of p.samples ?? []) hits.set(s, (hits.get(s) ?? 0) + 1);
  const total = (p.samples ?? []).length || 1;
  const byFn = new Map<string, { n: number; stage: string }>();
  const byStage = new Map<string, number>();
  for (const node of p.nodes) {
    const n = hits.get(node.id) ?? node.hitCount ?? 0;
    if (!n) continue;
    const cf = node.callFrame;
    const key = functionKey(cf);
    const stage = stageOf(cf.url, cf.functionName);
    const e = byFn.get(key) ?? { n: 0, stage };
    e.n += n;
    byFn.set(key, e);
    byStage.set(stage, (byStage.get(stage) ?? 0) + n);
  }
  const functions = [...byFn.entries()].sort((a, b) => b[1].n - a[1].n).slice(0, top).map(([k, v]) => ({ 'self %': (100 * v.n) / total, function: k, stage: v.stage }));
  const stages = [...byStage.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => ({ stage: k, 'self %': (100 * v) / total }));
  return { functions, stages };
}

interface AllocNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: AllocNode[];
}

/** Bytes allocated per request by function (top `top`) and by stage, from a sampling heap profile. */
export function summarizeAlloc(head: AllocNode, requests: number, top = 15): { functions: Row[]; stages: Row[]; perRequest: number } {
  const byFn = new Map<string, { bytes: number; stage: string }>();
  const byStage = new Map<string, number>();
  let total = 0;
  const walk = (n: AllocNode): void => {
    if (n.selfSize > 0) {
      const cf = n.callFrame;
      const key = functionKey(cf);
      const stage = stageOf(cf.url, cf.functionName);
      const e = byFn.get(key) ?? { bytes: 0, stage };
      e.bytes += n.selfSize;
      byFn.set(key, e);
      byStage.set(stage, (byStage.get(stage) ?? 0) + n.selfSize);
      total += n.selfSize;
    }
    for (const c of n.children) walk(c);
  };
  walk(head);
  const per = (b: number) => b / Math.max(1, requests);
  const functions = [...byFn.entries()].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top).map(([k, v]) => ({ 'bytes/request': per(v.bytes), function: k, stage: v.stage }));
  const stages = [...byStage.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => ({ stage: k, 'bytes/request': per(v) }));
  return { functions, stages, perRequest: per(total) };
}

async function allocSampled<T>(fn: () => Promise<T>): Promise<{ result: T; head: AllocNode }> {
  const s = new inspector.Session();
  s.connect();
  const post = (method: string, params?: object) => new Promise<unknown>((res, rej) => s.post(method, params ?? {}, (e, r) => (e ? rej(e) : res(r))));
  await post('HeapProfiler.enable');
  await post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  const result = await fn();
  const { profile } = (await post('HeapProfiler.stopSampling')) as { profile: { head: AllocNode } };
  s.disconnect();
  return { result, head: profile.head };
}

async function profiled<T>(on: boolean, fn: () => Promise<T>): Promise<{ result: T; profile: Profile | null }> {
  if (!on) return { result: await fn(), profile: null };
  const s = new inspector.Session();
  s.connect();
  const post = (method: string, params?: object) => new Promise<unknown>((res, rej) => s.post(method, params ?? {}, (e, r) => (e ? rej(e) : res(r))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 100 });
  await post('Profiler.start');
  const result = await fn();
  const { profile } = (await post('Profiler.stop')) as { profile: Profile };
  s.disconnect();
  return { result, profile };
}

/** The pcap's frames written by the recorder (as --record does) into `out`; returns the directory. */
async function recordDir(pcap: string, out: string): Promise<string> {
  fs.mkdirSync(out);
  const rec = new Recorder({ dir: out, maxFileBytes: 64 << 20, maxFileMs: 0, maxFiles: 0, gzip: false, bufferBytes: 1 << 30, snapLen: 262144 });
  let ts = 1_700_000_000_000_000;
  await new PcapFileSource(pcap).run((buf, off, capLen, wireLen, linkType) => rec.frame(buf, off, capLen, wireLen, linkType, (ts += 10), 'vxlan0'));
  await rec.close();
  return out;
}

/** Bytes of a file, or of a directory's files. */
function size(p: string): number {
  const st = fs.statSync(p);
  return st.isDirectory() ? fs.readdirSync(p).reduce((a, f) => a + fs.statSync(path.join(p, f)).size, 0) : st.size;
}

export async function main(): Promise<void> {
  const args = benchArgs();
  const profile = args.flag('profile');
  const alloc = args.flag('alloc');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-bench-offline-'));
  const sink = await startSink();
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    const cases = [
      { name: 'small GET', request: Buffer.from(GET, 'latin1'), n: QUICK ? 20_000 : 100_000 },
      { name: '4 KB POST', request: postBytes(4096), n: QUICK ? 5_000 : 20_000 },
      { name: '1 MB POST', request: postBytes(1 << 20), n: QUICK ? 20 : 100 },
      // The same small GETs recorded by --record (pcapng, rotated at 64 MiB) and read back as a directory with
      // --speed 0 and the default --max-queue: the destination sets the pace, as an operator runs it.
      { name: 'small GET, --record dir', request: Buffer.from(GET, 'latin1'), n: QUICK ? 20_000 : 100_000, recorded: true },
    ];
    let smallRps = 0;
    for (const c of cases) {
      const file = path.join(dir, `${c.name.replace(/\W+/g, '-')}.pcap`);
      fs.writeFileSync(file, pipelinePcap(c.request, c.n));
      const input = 'recorded' in c ? await recordDir(file, path.join(dir, 'rec')) : file;
      const frames = Math.ceil(c.request.length / MSS) * c.n + Math.min(CONNS, c.n);
      const cfg: Config = {
        ...DEFAULTS,
        destinations: [sink.url],
        pcap: input,
        percentageByHeader: undefined,
        markHeader: undefined,
        metricsPort: 0,
        logLevel: 'silent',
        maxConcurrency: CONNS,
        maxQueue: 'recorded' in c ? DEFAULTS.maxQueue : c.n,
        maxQueueBytes: 2 ** 40,
        drainTimeoutMs: 60_000,
      };
      global.gc?.();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const run = async () => {
        const d = await startDaemon(cfg, pino({ level: 'silent' }));
        await d.done;
        return d;
      };
      let heap: AllocNode | null = null;
      let d: Awaited<ReturnType<typeof run>>;
      let prof: Profile | null = null;
      if (alloc && c.name === 'small GET') ({ result: d, head: heap } = await allocSampled(run));
      else ({ result: d, profile: prof } = await profiled(profile && c.name === 'small GET', run));
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(c0);
      const replayed = await d.metrics.total('mirror_replay_requests_replayed_total');
      const dropped = await droppedByReason(d.metrics.registry);
      const rps = (replayed * 1e3) / ms;
      if (c.name === 'small GET') smallRps = rps;
      rows.push({
        requests: c.name,
        count: c.n,
        frames,
        'pcap MB': size(input) / 1e6,
        replayed,
        dropped,
        seconds: ms / 1e3,
        'requests/s': rps,
        'MB/s in': (size(input) * 1e-3) / ms,
        'CPU cores used': (cpu.user + cpu.system) / 1e3 / ms,
        'CPU µs/request': (cpu.user + cpu.system) / Math.max(1, replayed),
      });
      fs.rmSync(input, { recursive: true });
      if (input !== file) fs.rmSync(file);
      if (heap) {
        const a = summarizeAlloc(heap, replayed);
        printTable(`offline small GETs: bytes allocated per request by stage (sampled; ${fmt(a.perRequest)} in all)`, a.stages);
        printTable('offline small GETs: top functions by bytes allocated per request', a.functions);
      }
      if (prof) {
        const file2 = path.join(os.tmpdir(), `mr-bench-offline-${Date.now()}.cpuprofile`);
        fs.writeFileSync(file2, JSON.stringify(prof));
        const s = summarize(prof);
        printTable('offline small GETs: CPU profile, self time per stage', s.stages);
        printTable('offline small GETs: top functions by self time', s.functions, [`profile written to ${file2} (open in Chrome DevTools or speedscope for a flame graph)`]);
      }
    }
    // Baselines: the replay stage alone, same sink, same connections, same request.
    const shape = { name: 'small GET', method: 'GET', body: Buffer.alloc(0) };
    await destination(sink.url, CONNS, shape, 3_000, 1_000);
    const ours = await destination(sink.url, CONNS, shape, QUICK ? 20_000 : 100_000, 4_000);
    const und = await undiciPool(sink.url, CONNS, shape, QUICK ? 20_000 : 100_000, 4_000);
    const oursRps = (ours.done * 1e3) / ours.ms;
    const undRps = (und.done * 1e3) / und.ms;
    rows.push({ requests: 'baseline: Destination alone, small GET', count: ours.done, replayed: ours.done, seconds: ours.ms / 1e3, 'requests/s': oursRps, 'CPU cores used': ours.cpuMs / ours.ms, 'CPU µs/request': (ours.cpuMs * 1e3) / Math.max(1, ours.done) });
    rows.push({ requests: 'baseline: undici Pool alone, small GET', count: und.done, replayed: und.done, seconds: und.ms / 1e3, 'requests/s': undRps, 'CPU cores used': und.cpuMs / und.ms, 'CPU µs/request': (und.cpuMs * 1e3) / Math.max(1, und.done) });
    notes.push(`small GETs through the whole pipeline: ${ratio(smallRps, oursRps)} of Destination alone, ${ratio(smallRps, undRps)} of an undici Pool alone (target: ≥ 30,000 req/s: ${smallRps >= 30_000 ? 'met' : 'NOT met'}, ${fmt(smallRps)}).`);
  } finally {
    await sink.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  printTable(`offline pipeline: pcap → daemon (one process) → node:net sink, ${CONNS} connections`, rows, notes);
}
