/**
 * Capture in the namespace lab (root): VXLAN datagrams (VNI 1, inner 1500-byte Ethernet/IPv4/
 * TCP frames to port 80) pushed from the prod namespace into the adapter's kernel vxlan0, at
 * stepped rates and then as fast as this machine allows, by vxlan-flood.c (compiled here with
 * gcc). The daemon captures them through its TPACKET_V3 ring. Per step: datagrams sent,
 * frames the daemon received (pps), kernel ring drops (mirror_replay_capture_kernel_drops_total),
 * frames lost before the ring, and the daemon's CPU (% of one core, from /proc).
 *
 * vxlan0 is set up with --no-gro so that every datagram reaches the ring as one 1500-byte frame
 * (in this veth lab GRO does not merge them anyway: veth has no NAPI unless XDP is attached).
 * Each flow sends one request head announcing a body over --max-body-bytes, then body
 * segments in order: every frame is decoded, reassembled in order and skipped by the parser
 * in sync (one http_body_too_large per flow), and nothing is replayed.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { Lab, ROOT } from '../../scripts/lab/harness.js';
import { DEFAULT_RING_MIB } from '../../src/capture/ring.js';
import { benchArgs, fmt, printTable, procCpuSeconds, procRuntimeSeconds, QUICK, sleep, type Row } from './util.js';

const ADAPTER = '10.213.2.2';
const FLOWS = 64;

function flood(lab: Lab, bin: string, seconds: number, pps: number, sportBase: number): Promise<{ sent: number; seconds: number; errors: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', lab.ns('prod'), bin, ADAPTER, String(seconds), String(pps), String(FLOWS), String(sportBase), '1500'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => p.kill('SIGKILL'), (seconds + 10) * 1000);
    p.on('exit', (code) => {
      clearTimeout(t);
      if (code === 0) resolve(JSON.parse(out.trim()) as { sent: number; seconds: number; errors: number });
      else reject(new Error(`vxlan-flood exited with ${code}: ${err}`));
    });
  });
}

function noGro(lab: Lab): void {
  const down = lab.run('adapter', 'bash', [path.join(ROOT, 'scripts/vxlan-down.sh')]);
  const up = lab.run('adapter', 'bash', [path.join(ROOT, 'scripts/vxlan-up.sh'), '--vni', '1', '--no-gro']);
  if (down.status !== 0 || up.status !== 0) throw new Error(`vxlan0 setup failed: ${down.stderr}${up.stderr}`);
}

export async function main(): Promise<void> {
  const lab = new Lab(`mr-bcap-${process.pid}`);
  const rows: Row[] = [];
  const notes: string[] = [];
  const seconds = QUICK ? 1 : 3;
  try {
    const bin = path.join(lab.dir, 'vxlan-flood');
    const cc = spawnSync('gcc', ['-O2', '-Wall', '-o', bin, path.join(ROOT, 'test/bench/vxlan-flood.c')], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`gcc failed: ${cc.stderr}`);
    await lab.up();
    noGro(lab);
    await lab.startRecorders();
    const workers = benchArgs().opt('workers', '');
    await lab.startDaemon(workers ? ['--workers', workers] : []);
    notes.push(`daemon --workers ${workers || '(default)'}.`);
    const steps = [...(QUICK ? [100_000] : [50_000, 100_000, 200_000, 300_000]), 0];
    let sport = 2000;
    for (const pps of steps) {
      const d = lab.daemon!.pid!;
      const m0 = { pkts: lab.metric('mirror_replay_capture_packets_total'), drops: lab.metric('mirror_replay_capture_kernel_drops_total'), cpu: procCpuSeconds(d), run: procRuntimeSeconds(d) };
      const r = await flood(lab, bin, seconds, pps, sport);
      sport += FLOWS;
      await sleep(500); // let the daemon finish the blocks already in the ring
      // CPU first: a /metrics scrape costs the daemon ~8 ms, which is not capture work (m0 reads it last).
      const m1 = { cpu: procCpuSeconds(d), run: procRuntimeSeconds(d), pkts: lab.metric('mirror_replay_capture_packets_total'), drops: lab.metric('mirror_replay_capture_kernel_drops_total') };
      const got = m1.pkts - m0.pkts;
      const drops = m1.drops - m0.drops;
      rows.push({
        'offered pps': pps ? pps : 'max (sender-bound)',
        'sent pps': r.sent / r.seconds,
        'received pps': got / r.seconds,
        'kernel drops': drops,
        'lost before ring': Math.max(0, r.sent - got - drops),
        'daemon CPU % of a core': (100 * (m1.cpu - m0.cpu)) / (r.seconds + 0.5),
        'CPU ns/frame': got ? ((m1.cpu - m0.cpu) * 1e9) / got : 0,
        'CPU ns/frame (schedstat)': got ? ((m1.run - m0.run) * 1e9) / got : 0,
        'send errors': r.errors,
      });
    }
    const use = lab.daemonUsage();
    notes.push(`daemon peak RSS over all steps: ${fmt(use.peakRssMiB, 1)} MiB (VmHWM, the ${DEFAULT_RING_MIB} MiB ring included).`);
    const tooLarge = lab.metric('mirror_replay_requests_dropped_total', 'reason="http_body_too_large"');
    notes.push(`requests counted as http_body_too_large: ${tooLarge} (expected one per flow: ${FLOWS * steps.length}); parsed ${lab.metric('mirror_replay_requests_parsed_total')}.`);
  } finally {
    await lab.down();
  }
  printTable(`capture: VXLAN flood into the lab adapter, ${seconds} s per step, ${FLOWS} flows, 1500-byte inner frames`, rows, [
    'received = mirror_replay_capture_packets_total (frames read from the ring); kernel drops = tp_drops (ring full); lost before ring = sent − received − kernel drops (socket/backlog drops in the kernel, or GRO merging).',
    'CPU is the daemon process over the send time + 0.5 s: utime+stime (sampled at 100 Hz ticks), and the scheduler\'s own run time of its threads (schedstat, ns). The sender and the kernel\'s VXLAN receive path share the same 2 cores.',
    ...notes,
  ]);
}
