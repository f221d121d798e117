/**
 * Stalls in the namespace lab (root): paced requests to production while the daemon is frozen
 * (SIGSTOP, then SIGCONT), so that only the kernel ring can hold what is mirrored meanwhile; and
 * HTTP/1.0 requests (a connection each) while busy loops compete for the same cores. Per run:
 * requests production answered, requests the test environment got, lost (production − test),
 * kernel drops, drops by reason, and what each request cost in the ring (frames, bytes with the
 * per-frame header), from which the README's "stall absorbed" table is computed.
 *
 *   sudo node dist/test/bench/run.js freeze [--quick] [--daemon-args "--ring-block-timeout 10ms"]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { compare, readRecords } from '../../scripts/lab/compare.js';
import { Lab, TEST_HOST } from '../../scripts/lab/harness.js';
import { ringCostPerFrame } from '../../src/capture/ring.js';
import { benchArgs, fmt, printTable, QUICK, sleep, type Row } from './util.js';

interface Run {
  name: string;
  rate: number;
  requests: number;
  freezeAtMs: number;
  freezeMs: number;
  http10: boolean;
  busy: number;
  connections: number;
}

function droppedByReason(lab: Lab): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of lab.metrics()) {
    const m = /^mirror_replay_requests_dropped_total\{.*reason="([^"]+)"/.exec(k);
    if (m && v > 0) out[m[1]] = (out[m[1]] ?? 0) + v;
  }
  return out;
}

/** A busy loop in its own process, ended by PID after at most `maxMs`. */
function busyLoop(maxMs: number): ChildProcess {
  const p = spawn(process.execPath, ['-e', `const end = Date.now() + ${maxMs}; let x = 0; while (Date.now() < end) x++;`], { stdio: 'ignore' });
  return p;
}

async function one(lab: Lab, r: Run): Promise<Row> {
  const p0 = lab.lines(lab.prodLog);
  const t0 = lab.lines(lab.testLog);
  const k0 = lab.metric('mirror_replay_capture_kernel_drops_total');
  const f0 = lab.metric('mirror_replay_capture_packets_total');
  const b0 = lab.metric('mirror_replay_capture_bytes_total');
  const d0 = droppedByReason(lab);
  const busy = Array.from({ length: r.busy }, () => busyLoop(120_000));
  const started = Date.now();
  try {
    const args = ['--requests', String(r.requests), '--connections', String(r.connections), '--max-seconds', '100'];
    if (r.rate) args.push('--rate', String(r.rate));
    if (r.http10) args.push('--http10');
    const client = lab.client('load', args, 120_000);
    if (r.freezeMs) {
      await sleep(r.freezeAtMs);
      await lab.freezeDaemon(r.freezeMs);
    }
    const res = await client;
    const seconds = (Date.now() - started) / 1000;
    for (const b of busy) b.kill('SIGKILL');
    await lab.waitForTest(30_000);
    await sleep(600); // the last sweep's counters
    const prod = readRecords(lab.prodLog).slice(p0);
    const test = readRecords(lab.testLog).slice(t0);
    const c = compare(prod, test, { destinationHost: TEST_HOST, keepHost: false });
    const frames = lab.metric('mirror_replay_capture_packets_total') - f0;
    const bytes = lab.metric('mirror_replay_capture_bytes_total') - b0;
    const d1 = droppedByReason(lab);
    const dropped = Object.entries(d1).map(([k, v]) => [k, v - (d0[k] ?? 0)] as const).filter(([, v]) => v > 0);
    // The ring's cost of each frame: its capture plus the kernel's per-frame header, 8-aligned (~4 B on average).
    const ringBytes = bytes + frames * (ringCostPerFrame(0) + 4);
    return {
      run: r.name,
      'offered req/s': fmt(res.rps),
      seconds: fmt(seconds, 1),
      'client failures': res.failures.length,
      production: prod.length,
      test: test.length,
      lost: c.missing.length,
      duplicated: c.duplicated.length,
      mismatched: c.mismatches.length,
      'kernel drops': lab.metric('mirror_replay_capture_kernel_drops_total') - k0,
      'dropped (by reason)': dropped.map(([k, v]) => `${v} ${k}`).join(', ') || 0,
      'frames / req': fmt(frames / Math.max(1, prod.length), 2),
      'captured B / req': fmt(bytes / Math.max(1, prod.length)),
      'ring B / req': fmt(ringBytes / Math.max(1, prod.length)),
    };
  } finally {
    for (const b of busy) if (b.exitCode === null) b.kill('SIGKILL');
  }
}

export async function main(): Promise<void> {
  const extra = benchArgs().opt('daemon-args', '').split(' ').filter(Boolean);
  const only = benchArgs().opt('only', '');
  const runs: Run[] = [
    { name: 'keep-alive 1k/s, 12 s, frozen 5 s', rate: 1000, requests: 12_000, freezeAtMs: 3500, freezeMs: 5000, http10: false, busy: 0, connections: 16 },
    { name: 'keep-alive 5k/s, 5 s, frozen 1 s', rate: 5000, requests: 25_000, freezeAtMs: 2000, freezeMs: 1000, http10: false, busy: 0, connections: 64 },
    { name: 'HTTP/1.0 1k/s, 6 s, frozen 2 s', rate: 1000, requests: 6_000, freezeAtMs: 2000, freezeMs: 2000, http10: true, busy: 0, connections: 64 },
    { name: '20,000 HTTP/1.0, 64 at a time, 2 busy loops', rate: 0, requests: QUICK ? 4_000 : 20_000, freezeAtMs: 0, freezeMs: 0, http10: true, busy: 2, connections: 64 },
  ].filter((r) => !only || r.name.includes(only));
  const lab = new Lab(`mr-bfrz-${process.pid}`);
  const rows: Row[] = [];
  try {
    await lab.up();
    await lab.startRecorders();
    await lab.startDaemon(extra);
    // Warm-up: connections, JIT, the test environment's keep-alive pool.
    await lab.client('load', ['--requests', '2000', '--connections', '16']);
    await lab.waitForTest(20_000);
    for (const r of runs) {
      const row = await one(lab, r);
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  } finally {
    await lab.down();
  }
  printTable(`stalls in the namespace lab (daemon ${extra.join(' ') || 'default flags'})`, rows);
}
