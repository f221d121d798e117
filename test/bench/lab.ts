/**
 * The lab sweep (root, wrk): real HTTP clients against production in the namespace lab, the
 * daemon on the adapter replaying to the test environment. The offered rate steps up (wrk with a
 * per-connection delay), then runs unthrottled, until production saturates. Per step:
 * offered req/s (answered by production), replayed req/s (recorded by the test environment),
 * loss = production's records − the test environment's records, what the daemon counted as
 * dropped by reason, the daemon's CPU-seconds per 10k requests and peak RSS.
 * Writes lab-sweep.{md,svg,json} (lab-sweep-wN.* with --workers N) to the results directory
 * (util.ts resultsDir: a temporary directory unless --save, which writes test/bench/results/).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Lab, PROD_V4 } from '../../scripts/lab/harness.js';
import { chart } from './svg.js';
import { benchArgs, fmt, markdownTable, printTable, procCpuSeconds, QUICK, ROOT, sleep, writeResults, type Row } from './util.js';

interface Step {
  target: number | null;
  connections: number;
  seconds: number;
  offeredRps: number;
  wrkRequests: number;
  wrkErrors: string;
  production: number;
  test: number;
  lost: number;
  lossPct: number;
  replayedRps: number;
  dropped: Record<string, number>;
  kernelDrops: number;
  daemonCpuSeconds: number;
  cpuSecondsPer10k: number;
  peakRssMiB: number;
  prodCpuPct: number;
  testCpuPct: number;
}

const LUA = `-- one request per connection every MR_DELAY_MS ms (0: as fast as answers come)
local d = tonumber(os.getenv("MR_DELAY_MS") or "0")
function delay() return d end
`;

function wrk(lab: Lab, script: string, conns: number, seconds: number, delayMs: number): Promise<{ requests: number; seconds: number; errors: string; raw: string }> {
  return new Promise((resolve, reject) => {
    const args = ['netns', 'exec', lab.ns('client'), 'wrk', '-t', '1', '-c', String(conns), '-d', `${seconds}s`, '--timeout', '5s', '-s', script,
      '-H', 'User-Agent: wrk-lab-sweep', '-H', 'Accept: */*', `http://${PROD_V4}/api/items?id=1`];
    const p = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MR_DELAY_MS: String(delayMs) } });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => p.kill('SIGKILL'), (seconds + 15) * 1000);
    p.on('exit', (code) => {
      clearTimeout(t);
      const m = /(\d+) requests in ([\d.]+)(m?s)/.exec(out);
      if (code !== 0 || !m) return reject(new Error(`wrk failed (${code}): ${out}`));
      const secs = Number(m[2]) / (m[3] === 'ms' ? 1000 : 1);
      const err = /Socket errors: (.*)/.exec(out)?.[1] ?? '';
      const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1];
      resolve({ requests: Number(m[1]), seconds: secs, errors: [err, non2xx ? `non-2xx ${non2xx}` : ''].filter(Boolean).join('; '), raw: out });
    });
  });
}

/** CPU seconds of every process in a namespace (the production or test recorder). */
function nsCpu(lab: Lab, role: 'prod' | 'test'): number {
  const r = spawnSync('ip', ['netns', 'pids', lab.ns(role)], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').filter(Boolean).reduce((a, pid) => a + procCpuSeconds(Number(pid)), 0);
}

function droppedByReason(lab: Lab): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of lab.metrics()) {
    const m = /^mirror_replay_requests_dropped_total\{.*reason="([^"]+)"/.exec(k);
    if (m) out[m[1]] = (out[m[1]] ?? 0) + v;
  }
  return out;
}

/** Waits until the test environment has caught up with production (or nothing moves for 3 s). */
async function settle(lab: Lab, prodTarget: number, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  let last = -1;
  let since = Date.now();
  while (Date.now() < deadline) {
    const t = lab.lines(lab.testLog);
    if (t >= prodTarget) return;
    if (t !== last) {
      last = t;
      since = Date.now();
    } else if (Date.now() - since > 3_000) return;
    await sleep(100);
  }
}

function svg(steps: Step[], machine: string): string {
  const pts = (f: (s: Step) => number): Array<[number, number]> => steps.map((s) => [s.offeredRps, f(s)]);
  const maxX = Math.max(...steps.map((s) => s.offeredRps));
  return chart('mirror-replay in the namespace lab: offered load vs replayed and lost', [
    {
      title: 'requests/s',
      xLabel: 'offered req/s (answered by production)',
      yLabel: 'req/s',
      series: [
        { name: 'replayed (test env)', color: '#1f77b4', points: pts((s) => s.replayedRps) },
        { name: 'offered = replayed', color: '#999', points: [[0, 0], [maxX, maxX]], dashed: true, markers: false },
      ],
    },
    {
      title: 'requests lost (production − test), %',
      xLabel: 'offered req/s (answered by production)',
      yLabel: 'lost %',
      yMax: Math.max(1, ...steps.map((s) => s.lossPct)),
      series: [{ name: 'lost %', color: '#d62728', points: pts((s) => s.lossPct) }],
    },
    {
      title: 'daemon CPU-seconds per 10k requests',
      xLabel: 'offered req/s (answered by production)',
      yLabel: 'CPU-s / 10k',
      series: [{ name: 'CPU-s / 10k req', color: '#2ca02c', points: pts((s) => s.cpuSecondsPer10k) }],
    },
  ], { footer: machine });
}

const WORKERS = benchArgs().opt('workers', '');

export async function main(): Promise<void> {
  const seconds = QUICK ? 2 : 5;
  const targets: Array<number | null> = QUICK ? [1_000, 4_000, null] : [1_000, 2_000, 4_000, 8_000, 12_000, 16_000, 24_000, 32_000, null];
  const lab = new Lab(`mr-bsweep-${process.pid}`);
  const steps: Step[] = [];
  const commit = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const dirty = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', 'src'], { encoding: 'utf8' }).stdout.trim() ? ' (src modified)' : '';
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}, commit ${commit}${dirty}`;
  try {
    await lab.up();
    await lab.startRecorders();
    // --workers N: the daemon's capture workers (default: the daemon's own default); results get a -wN suffix.
    await lab.startDaemon(WORKERS ? ['--workers', WORKERS] : []);
    const script = path.join(lab.dir, 'rate.lua');
    fs.writeFileSync(script, LUA);
    // Warm-up: connections, JIT, the test environment's keep-alive pool.
    await wrk(lab, script, 8, 2, 5);
    await settle(lab, lab.lines(lab.prodLog), 10_000);
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i];
      // Throttled: each connection waits ~20 ms between requests, so a round trip of a millisecond
      // or two changes the rate little; unthrottled: 64 connections as fast as answers come.
      const conns = target === null ? 64 : Math.min(256, Math.max(4, Math.ceil((target * 20) / 1000)));
      const delayMs = target === null ? 0 : Math.max(1, Math.round((1000 * conns) / target));
      const p0 = lab.lines(lab.prodLog);
      const t0 = lab.lines(lab.testLog);
      const d0 = droppedByReason(lab);
      const k0 = lab.metric('mirror_replay_capture_kernel_drops_total');
      const c0 = lab.daemonUsage().cpuSeconds;
      const pc0 = nsCpu(lab, 'prod');
      const tc0 = nsCpu(lab, 'test');
      const w = await wrk(lab, script, conns, seconds, delayMs);
      const pc1 = nsCpu(lab, 'prod');
      const tc1 = nsCpu(lab, 'test');
      await settle(lab, p0 + w.requests, 20_000);
      await sleep(300);
      const p1 = lab.lines(lab.prodLog);
      const t1 = lab.lines(lab.testLog);
      const d1 = droppedByReason(lab);
      const usage = lab.daemonUsage();
      const production = p1 - p0;
      const test = t1 - t0;
      const dropped: Record<string, number> = {};
      for (const [k, v] of Object.entries(d1)) if (v - (d0[k] ?? 0) > 0) dropped[k] = v - (d0[k] ?? 0);
      const step: Step = {
        target,
        connections: conns,
        seconds: w.seconds,
        offeredRps: production / w.seconds,
        wrkRequests: w.requests,
        wrkErrors: w.errors,
        production,
        test,
        lost: production - test,
        lossPct: production ? (100 * (production - test)) / production : 0,
        replayedRps: test / w.seconds,
        dropped,
        kernelDrops: lab.metric('mirror_replay_capture_kernel_drops_total') - k0,
        daemonCpuSeconds: usage.cpuSeconds - c0,
        cpuSecondsPer10k: production ? ((usage.cpuSeconds - c0) * 10_000) / production : 0,
        peakRssMiB: usage.peakRssMiB,
        prodCpuPct: (100 * (pc1 - pc0)) / w.seconds,
        testCpuPct: (100 * (tc1 - tc0)) / w.seconds,
      };
      steps.push(step);
      console.log(`step ${target ?? 'max'}: offered ${fmt(step.offeredRps)} req/s, lost ${step.lost} (${fmt(step.lossPct, 2)}%), production CPU ${fmt(step.prodCpuPct)}%`);
      // Stop stepping once production no longer answers what is offered (saturated), or once
      // loss has clearly appeared; then one unthrottled step.
      if (target !== null && i < targets.length - 2 && (step.offeredRps < 0.8 * target || step.lossPct > 5)) {
        console.log(step.lossPct > 5 ? 'loss has appeared; one unthrottled step, then stop' : `production answers ${fmt(step.offeredRps)} of ${target} req/s offered: saturated; one unthrottled step, then stop`);
        i = targets.length - 2;
      }
    }
  } finally {
    await lab.down();
  }
  const rows: Row[] = steps.map((s) => ({
    'offered (target) req/s': s.target === null ? `max (${s.connections} conns)` : `${fmt(s.target)} (${s.connections} conns)`,
    'offered req/s': s.offeredRps,
    'replayed req/s': s.replayedRps,
    'production requests': s.production,
    'test requests': s.test,
    lost: s.lost,
    'loss %': fmt(s.lossPct, 2),
    'dropped (counted, by reason)': Object.entries(s.dropped).map(([k, v]) => `${v} ${k}`).join(', ') || 0,
    'kernel drops': s.kernelDrops,
    'daemon CPU-s / 10k req': fmt(s.cpuSecondsPer10k, 3),
    'daemon peak RSS MiB': s.peakRssMiB,
    'production CPU %': s.prodCpuPct,
    'test env CPU %': s.testCpuPct,
  }));
  printTable(`lab sweep: wrk → production, mirrored → daemon → test environment, ${seconds} s per step${WORKERS ? `, --workers ${WORKERS}` : ''}`, rows);
  if (QUICK) return;
  const name = WORKERS ? `lab-sweep-w${WORKERS}` : 'lab-sweep';
  const cmd = 'sudo npm run bench:lab -- --save   # or: sudo npm run bench -- lab --save';
  const md = [
    '# Lab sweep: offered load against loss',
    '',
    `Machine: ${machine}. Date: ${new Date().toISOString().slice(0, 10)}. Reproduce: \`${cmd}\` (needs root and \`wrk\`: \`apt-get install -y wrk\`).`,
    '',
    'Real clients (`wrk`, one thread, keep-alive, a small GET with 4 header fields) send to production in the namespace lab',
    "(`scripts/lab-net.sh`); production's NIC is mirrored by tc into VXLAN to the adapter, where the daemon (default flags)",
    `captures from the kernel's vxlan0 and replays to the test environment. Each step lasts ${seconds} s; the rate is throttled by a`,
    'per-connection delay in wrk, then unthrottled (`max`). Everything (wrk, production, the daemon, the test environment and',
    'the kernel\'s mirroring and VXLAN work) shares the same 2 cores: whichever needs the most CPU per request saturates first.',
    '',
    '- offered req/s: requests production recorded ÷ step time; replayed req/s: requests the test environment recorded ÷ step time.',
    "- lost = production's requests − the test environment's requests; every one of them should also appear in",
    '  "dropped (counted)", the daemon\'s `mirror_replay_requests_dropped_total` by reason.',
    '- CPU-s / 10k req: the daemon\'s user+system CPU over the step ÷ production\'s requests × 10,000. Peak RSS: the daemon\'s VmHWM',
    '  (it includes the 64 MiB capture ring). Production and test env CPU %: their recorders (node:http, one process each).',
    '',
    markdownTable(rows),
    `![offered load vs replayed and lost](${name}.svg)`,
    '',
  ].join('\n');
  writeResults({
    [`${name}.md`]: md,
    [`${name}.svg`]: svg(steps, machine),
    [`${name}.json`]: `${JSON.stringify({ machine, seconds, workers: WORKERS || 'default', steps }, null, 2)}\n`,
  });
}
