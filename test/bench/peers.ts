/**
 * Side by side with the aws-samples Go replayer (issue 15's bar) in the namespace lab, in the same
 * run: both read the same mirrored vxlan0 on the adapter; mirror-replay replays to the test
 * environment's recorder on port 80, the Go program (gopacket, pcap) to a second recorder on port 8080.
 * Each load starts both afresh (so each peak RSS is that load's) and warms them up with 1 s of wrk:
 *
 * - keep-alive: wrk, 64 connections, a 5 ms pause per connection between requests (--ka-pause-ms), 10 s
 *   (7.5–8k req/s on a quiet 2-core machine: the pause plus the answer's round trip; the achieved rate is reported);
 * - churn: 20,000 HTTP/1.0 GETs, a connection each, 64 at a time (scripts/lab/client.ts load --http10).
 *
 * Per load and replayer: requests production answered, this load's requests that replayer's recorder got, lost
 * (matched on X-Test-Id; mirror-replay's are also compared field by field with compare.ts; the Go
 * program's only by method, target and body, since it adds X-Forwarded-*, User-Agent and
 * Accept-Encoding and reorders fields), CPU-seconds from /proc over the load and the catch-up after
 * it, CPU-s per 10k requests answered, and peak RSS (VmHWM). Then ours ÷ the Go program's CPU.
 * The Go program gets up to --peer-wait seconds more (130; 0 with --quick) for requests it holds back
 * until its once-a-minute flush: those count as late, not lost (measurePeer).
 *
 * The Go program is not part of this repository: build it yourself (test/bench/README.md, "peers")
 * and pass its path. Without one, mirror-replay is measured alone and the output says so.
 *
 *   sudo node dist/test/bench/run.js peers [--peer-bin /path/to/replayer] [--peer-wait S] [--quick] [--save]
 *   (or MR_PEER_BIN=/path/to/replayer)
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compare, readRecords, type RecordLine } from '../../scripts/lab/compare.js';
import { Lab, PROD_V4, TEST_HOST } from '../../scripts/lab/harness.js';
import { benchArgs, fmt, markdownTable, printTable, QUICK, ROOT, sleep, writeResults, type Row } from './util.js';

const RECORDER = path.join(ROOT, 'dist/scripts/lab/recorder.js');
const PEER_PORT = 8080;
/** Seconds the Go program gets after a load for its once-a-minute flush (measurePeer); none with --quick. */
const PEER_WAIT_S = Number(benchArgs().opt('peer-wait', QUICK ? '0' : '130'));
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

interface Load {
  name: string;
  run: (lab: Lab) => Promise<{ seconds: number; note: string }>;
}

interface Side {
  replayer: string;
  /** This load's requests that arrived (by X-Test-Id). */
  received: number;
  lost: number;
  duplicated: number;
  /** Records that are not this load's (a warm-up request the Go program delivered late). */
  other: number;
  /** Requests that arrived with another method, target or body (mirror-replay: or header fields). */
  altered: number;
  kernelDrops: number | null;
  /** The Go program: requests that arrived only after its once-a-minute flush. */
  late: number | null;
  cpuSeconds: number;
  cpuPer10k: number;
  peakRssMiB: number;
  /** Most file descriptors open at once (sampled every second): its sockets. */
  peakFds: number;
  /** The Go program's "Error reading stream" log lines (an unparseable request, e.g. after a gap). */
  streamErrors: number | null;
}

interface Result {
  load: string;
  seconds: number;
  production: number;
  rps: number;
  note: string;
  sides: Side[];
}

/** CPU seconds (user + system, every thread) and peak RSS of a process, from /proc. */
function usage(pid: number | undefined): { cpu: number; hwmMiB: number } {
  if (!pid) return { cpu: 0, hwmMiB: 0 };
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK, hwmMiB: kb / 1024 };
  } catch {
    return { cpu: 0, hwmMiB: 0 };
  }
}

function openFds(pid: number | undefined): number {
  try {
    return pid ? fs.readdirSync(`/proc/${pid}/fd`).length : 0;
  } catch {
    return 0;
  }
}

/** Samples the open file descriptors of each process once a second; `peaks()` the most seen. */
function fdSampler(pids: Array<number | undefined>): { peaks: () => number[]; stop: () => void } {
  const peak = pids.map(() => 0);
  const t = setInterval(() => pids.forEach((p, i) => (peak[i] = Math.max(peak[i], openFds(p)))), 1000);
  return { peaks: () => peak.slice(), stop: () => clearInterval(t) };
}

/** A wrk script: an X-Test-Id per request (`TAG-n`) so both replayers can be matched to production. */
function wrkScript(lab: Lab, tag: string, delayMs: number): string {
  const file = path.join(lab.dir, `${tag}.lua`);
  fs.writeFileSync(file, [
    `local n = 0`,
    `function delay() return ${delayMs} end`,
    'function request()',
    '  n = n + 1',
    '  local h = {}',
    '  for k, v in pairs(wrk.headers) do h[k] = v end',
    `  h["X-Test-Id"] = "${tag}-" .. n`,
    `  return wrk.format(nil, "/ka/" .. n, h)`,
    'end',
    '',
  ].join('\n'));
  return file;
}

/** wrk in the client namespace (one thread, keep-alive), ended by PID after `seconds` + 15 at the latest. */
async function wrk(lab: Lab, tag: string, conns: number, seconds: number, delayMs: number): Promise<{ requests: number; seconds: number; errors: string }> {
  const args = ['-t', '1', '-c', String(conns), '-d', `${seconds}s`, '--timeout', '5s', '-s', wrkScript(lab, tag, delayMs),
    '-H', 'User-Agent: wrk-peers', '-H', 'Accept: */*', `http://${PROD_V4}/`];
  const p = lab.spawnIn('client', 'wrk', args);
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (out += d));
  const t = setTimeout(() => p.kill('SIGKILL'), (seconds + 15) * 1000);
  const code = await new Promise<number | null>((resolve) => p.on('exit', resolve));
  clearTimeout(t);
  const m = /(\d+) requests in ([\d.]+)(m?s)/.exec(out);
  if (code !== 0 || !m) throw new Error(`wrk failed (${code}): ${out}`);
  const errors = [/Socket errors: (.*)/.exec(out)?.[1], /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1]].filter(Boolean).join('; ');
  return { requests: Number(m[1]), seconds: Number(m[2]) / (m[3] === 'ms' ? 1000 : 1), errors };
}

function loads(): Load[] {
  const kaSeconds = QUICK ? 3 : 10;
  const churn = QUICK ? 4_000 : 20_000;
  const pause = Number(benchArgs().opt('ka-pause-ms', '5'));
  return [
    {
      name: `keep-alive: wrk, 64 connections, ${pause} ms pause each, ${kaSeconds} s`,
      run: async (lab) => {
        const w = await wrk(lab, 'ka', 64, kaSeconds, pause);
        return { seconds: w.seconds, note: w.errors ? `wrk: ${w.errors}` : '' };
      },
    },
    {
      name: `churn: ${fmt(churn)} HTTP/1.0 GETs, a connection each, 64 at a time`,
      run: async (lab) => {
        const r = await lab.client('load', ['--requests', String(churn), '--connections', '64', '--http10', '--max-seconds', '100'], 150_000);
        return { seconds: r.seconds, note: r.failures.length ? `client: ${r.failures.length} failed` : '' };
      },
    },
  ];
}

/** Starts the Go program on the adapter and waits until it reads packets (its log says so). */
async function startPeer(lab: Lab, bin: string, log: string): Promise<ChildProcess> {
  const from = fs.existsSync(log) ? fs.statSync(log).size : 0;
  const p = lab.spawnIn('adapter', bin, ['-destination', `http://${TEST_HOST}:${PEER_PORT}`, '-filter-request-port', '80'], log);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (p.exitCode !== null) break;
    if (fs.readFileSync(log, 'utf8').slice(from).includes('reading in packets')) return p;
    await sleep(100);
  }
  throw new Error(`the Go program did not start (${p.exitCode}): ${fs.readFileSync(log, 'utf8').slice(from)}`);
}

async function stop(p: ChildProcess | null): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(t);
}

/** The second recorder in the test namespace, for the Go program. */
async function startPeerRecorder(lab: Lab, out: string): Promise<void> {
  const p = lab.spawnIn('test', process.execPath, [RECORDER, '--out', out, '--listen', `${TEST_HOST}:${PEER_PORT}`]);
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`peer recorder: no "ready" within 10 s: ${buf}`)), 10_000);
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('ready')) {
        clearTimeout(t);
        resolve();
      }
    });
    p.on('exit', (c) => reject(new Error(`peer recorder exited with ${c}: ${buf}`)));
  });
}

/** Waits until every recorder has `want` more lines than at `from`, or none has moved for 3 s. */
async function settle(lab: Lab, logs: string[], from: number[], want: number, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  let last = '';
  let since = Date.now();
  while (Date.now() < deadline) {
    const now = logs.map((l) => lab.lines(l));
    if (now.every((n, i) => n - from[i] >= want)) return;
    const key = now.join(',');
    if (key !== last) {
      last = key;
      since = Date.now();
    } else if (Date.now() - since > 3_000) return;
    await sleep(100);
  }
}

function side(replayer: string, prod: RecordLine[], got: RecordLine[], strict: boolean, cpu: number, hwmMiB: number, kernelDrops: number | null): Side {
  const c = compare(prod, got, { destinationHost: TEST_HOST, keepHost: false });
  const altered = new Set(c.mismatches.filter((m) => strict || m.what !== 'headers').map((m) => m.id)).size;
  return {
    replayer,
    received: prod.length - c.missing.length,
    lost: c.missing.length,
    duplicated: c.duplicated.length,
    other: c.unexpected.length,
    altered,
    kernelDrops,
    late: null,
    peakFds: 0,
    streamErrors: null,
    cpuSeconds: cpu,
    cpuPer10k: prod.length ? (cpu * 10_000) / prod.length : 0,
    peakRssMiB: hwmMiB,
  };
}

/** Ours: measured once production's requests have arrived (or nothing moved for 3 s). */
function measureOurs(lab: Lab, prod: RecordLine[], from: number, cpu0: number, k0: number): Side {
  const u = usage(lab.daemon?.pid);
  const drops = lab.metric('mirror_replay_capture_kernel_drops_total') - k0;
  return side('mirror-replay', prod, readRecords(lab.testLog).slice(from), true, u.cpu - cpu0, u.hwmMiB, drops);
}

/**
 * The Go program delivers a connection's data only in order: after a missed frame, the rest of that
 * connection waits for its once-a-minute flush of data older than a minute, and arrives 1–2 minutes
 * late. So it gets up to `waitS` more seconds (with mirror-replay stopped): what arrives then is
 * "late", what never arrives "lost". Its CPU and peak RSS are read at the end, the flush included.
 */
async function measurePeer(lab: Lab, peer: ChildProcess, prod: RecordLine[], log: string, from: number, cpu0: number, waitS: number): Promise<Side> {
  const missing = () => compare(prod, readRecords(log).slice(from), { destinationHost: TEST_HOST, keepHost: false }).missing.length;
  const missingNow = missing();
  if (missingNow && waitS > 0) {
    console.log(`the Go program is ${missingNow} requests short; waiting up to ${waitS} s for its once-a-minute flush`);
    const deadline = Date.now() + waitS * 1000;
    while (Date.now() < deadline && missing() > 0) await sleep(2000);
  }
  const u = usage(peer.pid);
  const s = side('aws-samples Go', prod, readRecords(log).slice(from), false, u.cpu - cpu0, u.hwmMiB, null);
  s.late = waitS > 0 ? missingNow - s.lost : null;
  return s;
}

/** Lines of `file` from byte `from` on that contain `text`. */
function countLines(file: string, from: number, text: string): number {
  if (!fs.existsSync(file)) return 0;
  return fs.readFileSync(file, 'utf8').slice(from).split('\n').filter((l) => l.includes(text)).length;
}

/** Warm-up (JIT, connection pools, the recorders), kept small: the Go program may deliver part of it late. */
async function warmUp(lab: Lab, logs: string[]): Promise<void> {
  const p0 = lab.lines(lab.prodLog);
  const from = logs.map((l) => lab.lines(l));
  await wrk(lab, `warm${Date.now()}`, 4, 1, 10);
  await settle(lab, logs, from, lab.lines(lab.prodLog) - p0, 15_000);
}

/** One load with fresh replayers: start both, warm up, measure the load and the catch-up, stop both. */
async function one(lab: Lab, load: Load, peerBin: string, peerLog: string, peerOut: string): Promise<Result> {
  await lab.startDaemon();
  let peer: ChildProcess | null = null;
  let fds: ReturnType<typeof fdSampler> | null = null;
  try {
    if (peerBin) peer = await startPeer(lab, peerBin, peerOut);
    const logs = peerBin ? [lab.testLog, peerLog] : [lab.testLog];
    await warmUp(lab, logs);
    const p0 = lab.lines(lab.prodLog);
    const from = logs.map((l) => lab.lines(l));
    const outFrom = fs.existsSync(peerOut) ? fs.statSync(peerOut).size : 0;
    const k0 = lab.metric('mirror_replay_capture_kernel_drops_total');
    const ours0 = usage(lab.daemon?.pid).cpu;
    const peer0 = usage(peer?.pid).cpu;
    fds = fdSampler([lab.daemon?.pid, peer?.pid]);
    const r = await load.run(lab);
    await settle(lab, logs, from, lab.lines(lab.prodLog) - p0, 30_000);
    await sleep(300);
    const prod = readRecords(lab.prodLog).slice(p0);
    const sides = [measureOurs(lab, prod, from[0], ours0, k0)];
    await lab.stopDaemon();
    if (peer) {
      sides.push(await measurePeer(lab, peer, prod, peerLog, from[1], peer0, PEER_WAIT_S));
      sides[1].streamErrors = countLines(peerOut, outFrom, 'Error reading stream');
    }
    sides.forEach((s, i) => (s.peakFds = fds!.peaks()[i]));
    return { load: load.name, seconds: r.seconds, production: prod.length, rps: prod.length / r.seconds, note: r.note, sides };
  } finally {
    fds?.stop();
    await stop(peer);
    await lab.stopDaemon();
  }
}

function rows(results: Result[]): Row[] {
  return results.flatMap((r) => r.sides.map((s): Row => ({
    load: r.load.split(':')[0],
    replayer: s.replayer,
    'req/s': r.rps,
    production: r.production,
    received: s.received,
    lost: s.lost,
    'dup / altered / other': `${s.duplicated} / ${s.altered} / ${s.other}`,
    'late (Go: after its flush)': s.kernelDrops !== null ? '-' : (s.late ?? 'not waited'),
    'kernel drops': s.kernelDrops ?? '-',
    'CPU-s': fmt(s.cpuSeconds, 2),
    'CPU-s / 10k req': fmt(s.cpuPer10k, 3),
    'peak RSS MiB': s.peakRssMiB,
    'peak fds': s.peakFds,
    'stream errors (Go log)': s.streamErrors ?? '-',
  })));
}

/** Issue 15's bar per load: ours ÷ the Go program's CPU per request, and the absolute figures. */
function bar(results: Result[]): Row[] {
  return results.map((r) => {
    const [ours, peer] = r.sides;
    const keepAlive = r.load.startsWith('keep-alive');
    const ratio = peer && peer.cpuPer10k > 0 ? ours.cpuPer10k / peer.cpuPer10k : NaN;
    return {
      load: r.load.split(':')[0],
      'lost (ours / Go)': `${ours.lost} / ${peer ? `${peer.lost} (+ ${peer.late ?? '?'} late)` : '-'}`,
      'CPU per request, ours ÷ Go': Number.isFinite(ratio) ? `${ratio.toFixed(2)}×${keepAlive ? '' : ' (bar ≤ 0.20×)'}` : 'n/a',
      'ours CPU-s / 10k': `${fmt(ours.cpuPer10k, 3)}${keepAlive ? ' (bar ≤ 0.25)' : ''}`,
      'ours peak RSS': `${fmt(ours.peakRssMiB)} MiB = ${fmt((ours.peakRssMiB * 2 ** 20) / 1e6)} MB (bar ≤ 150 MB)`,
    };
  });
}

export async function main(): Promise<void> {
  const peerBin = benchArgs().opt('peer-bin', process.env.MR_PEER_BIN ?? '');
  if (peerBin) fs.accessSync(peerBin, fs.constants.X_OK);
  else console.log('no --peer-bin (or MR_PEER_BIN): measuring mirror-replay alone, without the Go program beside it');
  const lab = new Lab(`mr-bpeer-${process.pid}`);
  const peerLog = path.join(lab.dir, 'test-peer.jsonl');
  const peerOut = path.join(lab.dir, 'peer.log');
  const commit = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const load0 = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const results: Result[] = [];
  try {
    await lab.up();
    await lab.startRecorders();
    if (peerBin) await startPeerRecorder(lab, peerLog);
    for (const l of loads()) {
      results.push(await one(lab, l, peerBin, peerLog, peerOut));
      console.log(JSON.stringify(results[results.length - 1]));
    }
  } finally {
    await lab.down();
  }
  const load1 = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, Linux ${os.release()}, Node ${process.version}, commit ${commit}; load average ${load0} before, ${load1} after`;
  const title = `mirror-replay${peerBin ? ' and the aws-samples Go replayer side by side' : ' alone (no --peer-bin)'} in the namespace lab, fresh replayers per load`;
  const notes = [`${machine}.`, ...results.filter((r) => r.note).map((r) => `${r.load.split(':')[0]}: ${r.note}`)];
  printTable(title, rows(results), notes);
  printTable("issue 15's bar", bar(results));
  if (QUICK) return;
  const md = [`# ${title}`, '', `${machine}. Date: ${new Date().toISOString().slice(0, 10)}. Reproduce: \`sudo node dist/test/bench/run.js peers --peer-bin PATH --save\`.`, '',
    ...results.map((r) => `- ${r.load}`), '', markdownTable(rows(results)), '', markdownTable(bar(results))].join('\n');
  writeResults({ 'peers.md': `${md}\n`, 'peers.json': `${JSON.stringify({ machine, peer: peerBin || null, results }, null, 2)}\n` });
}
