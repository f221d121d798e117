/**
 * Stalls in the namespace lab (root): paced requests to production while the daemon is frozen
 * (SIGSTOP, then SIGCONT), so that only the kernel ring holds what is mirrored meanwhile; and
 * HTTP/1.0 requests (a connection each) while busy loops compete for the same cores.
 *
 * Per run: requests production answered, requests the test environment got, lost (production −
 * test), kernel drops, drops by reason, and what a request cost in the ring (frames, and bytes with
 * the kernel's per-frame header). Runs with a small ring check the model the README's table rests
 * on: the ring holds (blocks − 1) × min(timeout, usable block bytes ÷ byte rate); the stall it
 * absorbed is the freeze minus lost ÷ the rate production saw while the daemon was frozen. Last, that table: the stall each default ring absorbs
 * at 1k, 10k and 50k requests/s, from the bytes per request measured here.
 *
 *   sudo node dist/test/bench/run.js freeze [--quick] [--only TEXT]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { compare, readRecords } from '../../scripts/lab/compare.js';
import { Lab, TEST_HOST } from '../../scripts/lab/harness.js';
import { BLOCK_HEADER_BYTES, DEFAULT_BLOCK_KIB, DEFAULT_RETIRE_MS, ringCostPerFrame, ringGeometry, ringShareMiB } from '../../src/capture/ring.js';
import { benchArgs, fmt, printTable, QUICK, sleep, type Row } from './util.js';

interface Run {
  name: string;
  daemon: string[];
  rate: number;
  requests: number;
  freezeAtMs: number;
  freezeMs: number;
  http10: boolean;
  busy: number;
  connections: number;
  /** Ring geometry for the prediction: MiB, block KiB, timeout ms. */
  ring: [number, number, number];
}

interface Result {
  run: Run;
  offeredRps: number;
  production: number;
  lost: number;
  ringBytesPerRequest: number;
}

/** Seconds a ring holds at `rps` requests/s of `bytesPerRequest` ring bytes (one block is the reader's). */
export function stallSeconds(ringMiB: number, blockKiB: number, retireMs: number, rps: number, bytesPerRequest: number): number {
  const g = ringGeometry(ringMiB, blockKiB, retireMs);
  const fillSeconds = (g.blockBytes - BLOCK_HEADER_BYTES) / (rps * bytesPerRequest);
  return (g.blocks - 1) * Math.min(retireMs / 1000, fillSeconds);
}

function droppedByReason(lab: Lab): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of lab.metrics()) {
    const m = /^mirror_replay_requests_dropped_total\{.*reason="([^"]+)"/.exec(k);
    if (m && v > 0) out[m[1]] = (out[m[1]] ?? 0) + v;
  }
  return out;
}

/** A busy loop in its own process, ended by PID (and by itself after `maxMs`). */
function busyLoop(maxMs: number): ChildProcess {
  return spawn(process.execPath, ['-e', `const end = Date.now() + ${maxMs}; let x = 0; while (Date.now() < end) x++;`], { stdio: 'ignore' });
}

async function one(lab: Lab, r: Run): Promise<{ row: Row; result: Result }> {
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
    // Production's rate while the daemon is frozen: a client behind its schedule catches up then.
    let frozenRps = 0;
    if (r.freezeMs) {
      await sleep(r.freezeAtMs);
      const before = lab.lines(lab.prodLog);
      await lab.freezeDaemon(r.freezeMs);
      frozenRps = (lab.lines(lab.prodLog) - before) / (r.freezeMs / 1000);
    }
    const res = await client;
    const seconds = (Date.now() - started) / 1000;
    for (const b of busy) b.kill('SIGKILL');
    await lab.waitForTest(30_000);
    await sleep(600); // the last sweep's counters
    const prod = readRecords(lab.prodLog).slice(p0);
    const test = readRecords(lab.testLog).slice(t0);
    const c = compare(prod, test, { destinationHost: TEST_HOST, keepHost: false });
    const drops = lab.metric('mirror_replay_capture_kernel_drops_total') - k0;
    const frames = lab.metric('mirror_replay_capture_packets_total') - f0;
    const bytes = lab.metric('mirror_replay_capture_bytes_total') - b0;
    const d1 = droppedByReason(lab);
    const dropped = Object.entries(d1).map(([k, v]) => [k, v - (d0[k] ?? 0)] as const).filter(([, v]) => v > 0);
    // A frame's ring cost: its bytes plus the kernel's header, 8-aligned (~3.5 B on average).
    // Only frames handed over are counted: with drops, the figure is per request that arrived.
    const arrived = prod.length - c.missing.length;
    const ringBytesPerRequest = (bytes + frames * (ringCostPerFrame(0) + 3.5)) / Math.max(1, arrived);
    const [mib, kib, ms] = r.ring;
    const offeredRps = r.rate || res.rps;
    const predicted = stallSeconds(mib, kib, ms, frozenRps || offeredRps, ringBytesPerRequest);
    const row: Row = {
      run: r.name,
      daemon: r.daemon.join(' ') || 'defaults',
      'offered req/s': fmt(res.rps),
      seconds: fmt(seconds, 1),
      production: prod.length,
      test: test.length,
      lost: c.missing.length,
      'dup/mismatch': `${c.duplicated.length}/${c.mismatches.length}`,
      'kernel drops': drops,
      'dropped (by reason)': dropped.map(([k, v]) => `${v} ${k}`).join(', ') || 0,
      'frames / req': fmt(frames / Math.max(1, arrived), 2),
      'ring B / req': fmt(ringBytesPerRequest),
      'freeze s': r.freezeMs ? fmt(r.freezeMs / 1000, 1) : '-',
      'req/s while frozen': r.freezeMs ? fmt(frozenRps) : '-',
      'ring holds s (model)': r.freezeMs ? fmt(predicted, 1) : '-',
      'absorbed s (measured)': r.freezeMs && c.missing.length ? fmt(r.freezeMs / 1000 - c.missing.length / frozenRps, 1) : r.freezeMs ? `≥ ${fmt(r.freezeMs / 1000, 1)}` : '-',
    };
    return { row, result: { run: r, offeredRps, production: prod.length, lost: c.missing.length, ringBytesPerRequest } };
  } finally {
    for (const b of busy) if (b.exitCode === null) b.kill('SIGKILL');
  }
}

function runs(): Run[] {
  const dflt: [number, number, number] = [64, DEFAULT_BLOCK_KIB, DEFAULT_RETIRE_MS];
  const small = ['--ring-mb', '4'];
  const smallSlow = ['--ring-mb', '4', '--ring-block-timeout', '1s'];
  const ka = { http10: false, busy: 0 };
  return [
    { name: 'keep-alive 1k/s 12 s, frozen 5 s', daemon: [], ...ka, rate: 1000, requests: 12_000, freezeAtMs: 3500, freezeMs: 5000, connections: 16, ring: dflt },
    { name: 'keep-alive 5k/s 5 s, frozen 1 s', daemon: [], ...ka, rate: 5000, requests: 25_000, freezeAtMs: 2000, freezeMs: 1000, connections: 64, ring: dflt },
    { name: 'HTTP/1.0 1k/s 6 s, frozen 2 s', daemon: [], http10: true, busy: 0, rate: 1000, requests: 6_000, freezeAtMs: 2000, freezeMs: 2000, connections: 64, ring: dflt },
    { name: '20,000 HTTP/1.0, 64 at a time, 2 busy loops', daemon: [], http10: true, busy: 2, rate: 0, requests: QUICK ? 4_000 : 20_000, freezeAtMs: 0, freezeMs: 0, connections: 64, ring: dflt },
    // Past the ring: the backlog is parsed at once after SIGCONT, and a destination's queue holds --max-queue (20,000).
    { name: 'keep-alive 2.5k/s 16 s, frozen 10 s', daemon: [], ...ka, rate: 2500, requests: 40_000, freezeAtMs: 3000, freezeMs: 10_000, connections: 64, ring: dflt },
    // The model, time-limited: 32 blocks × 100 ms.
    { name: 'keep-alive 1k/s 8 s, frozen 2.5 s', daemon: small, ...ka, rate: 1000, requests: 8_000, freezeAtMs: 2000, freezeMs: 2500, connections: 16, ring: [4, 128, 100] },
    { name: 'keep-alive 1k/s 8 s, frozen 5 s', daemon: small, ...ka, rate: 1000, requests: 8_000, freezeAtMs: 2000, freezeMs: 5000, connections: 16, ring: [4, 128, 100] },
    // The model, byte-limited: 32 blocks of 128 KiB fill in ~0.1 s each at 5k/s, long before 1 s.
    { name: 'keep-alive 5k/s 8 s, frozen 2 s', daemon: smallSlow, ...ka, rate: 5000, requests: 40_000, freezeAtMs: 2000, freezeMs: 2000, connections: 64, ring: [4, 128, 1000] },
    { name: 'keep-alive 5k/s 8 s, frozen 4.5 s', daemon: smallSlow, ...ka, rate: 5000, requests: 40_000, freezeAtMs: 2000, freezeMs: 4500, connections: 64, ring: [4, 128, 1000] },
  ];
}

/** The README's table: per default ring (64 MiB shared by 1–4 workers, and 256 MiB), the stall absorbed. */
function depthTable(keepAlive: number, http10: number): Row[] {
  const rows: Row[] = [];
  const cases: Array<[number, number]> = [[64, 1], [64, 2], [64, 3], [64, 4], [256, 1]];
  for (const [mib, workers] of cases) {
    const share = ringShareMiB(mib, workers, DEFAULT_BLOCK_KIB);
    const g = ringGeometry(share, DEFAULT_BLOCK_KIB, DEFAULT_RETIRE_MS);
    const row: Row = { ring: `--ring-mb ${mib}, ${workers} worker${workers > 1 ? 's' : ''}: ${workers > 1 ? `${workers} × ` : ''}${g.blocks} blocks` };
    for (const rps of [1_000, 10_000, 50_000]) {
      // Flows are hashed over the workers: each ring sees its share of the rate.
      const ka = stallSeconds(share, DEFAULT_BLOCK_KIB, DEFAULT_RETIRE_MS, rps / workers, keepAlive);
      const h10 = stallSeconds(share, DEFAULT_BLOCK_KIB, DEFAULT_RETIRE_MS, rps / workers, http10);
      row[`${rps / 1000}k req/s`] = `${fmt(ka, 1)} s / ${fmt(h10, 1)} s`;
    }
    rows.push(row);
  }
  return rows;
}

export async function main(): Promise<void> {
  const only = benchArgs().opt('only', '');
  const list = runs().filter((r) => !only || r.name.includes(only));
  const lab = new Lab(`mr-bfrz-${process.pid}`);
  const rows: Row[] = [];
  const results: Result[] = [];
  try {
    await lab.up();
    await lab.startRecorders();
    let args: string[] | null = null;
    for (const r of list) {
      if (args === null || args.join(' ') !== r.daemon.join(' ')) {
        if (args !== null) await lab.stopDaemon();
        await lab.startDaemon(r.daemon);
        args = r.daemon;
        // Warm-up: connections, JIT, the test environment's keep-alive pool.
        await lab.client('load', ['--requests', '1000', '--connections', '16']);
        await lab.waitForTest(20_000);
      }
      const { row, result } = await one(lab, r);
      rows.push(row);
      results.push(result);
      console.log(JSON.stringify(row));
    }
  } finally {
    await lab.down();
  }
  printTable('stalls in the namespace lab (SIGSTOP … SIGCONT of the daemon; 2 busy loops = 2 node processes spinning)', rows);
  const cost = (http10: boolean) => {
    const rs = results.filter((x) => x.run.http10 === http10 && x.lost === 0 && x.run.daemon.length === 0);
    return rs.length ? rs.reduce((a, x) => a + x.ringBytesPerRequest * x.production, 0) / rs.reduce((a, x) => a + x.production, 0) : NaN;
  };
  const ka = cost(false);
  const h10 = cost(true);
  if (Number.isFinite(ka) && Number.isFinite(h10)) {
    printTable(`stall the ring absorbs (keep-alive GET ${fmt(ka)} B / HTTP/1.0 GET on its own connection ${fmt(h10)} B of ring per request, as measured above; ${DEFAULT_BLOCK_KIB} KiB blocks, ${DEFAULT_RETIRE_MS} ms)`, depthTable(ka, h10));
  }
}
