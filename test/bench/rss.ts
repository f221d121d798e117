/**
 * Memory with many open flows: the whole daemon (startDaemon, --pcap) in a process of its own,
 * on pcaps of 10,000 client connections that stay open, each holding a partial request in the
 * HTTP parser and out-of-order segments behind a hole in reassembly. Reports the process's peak
 * RSS (getrusage maxRSS) and, sampled every 20 ms while the pcap is read, the flows open and the
 * bytes held by reassembly and by the parsers. Rows without held data are the baselines.
 * Target (issue 6): RSS ≤ 200 MB with 10,000 open flows holding out-of-order data.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { DEFAULTS, type Config } from '../../src/config/config.js';
import { startDaemon } from '../../src/daemon.js';
import { buildFrame, pcapFile, TCP_ACK, TCP_PSH, TCP_SYN } from '../fixtures/frames.js';
import { droppedByReason } from './offline.js';
import { benchArgs, printTable, QUICK, startSink, type Row } from './util.js';

const MSS = 1448;

/**
 * `flows` connections, interleaved: SYN, then the head of a 1 MB POST with the first body bytes
 * (in order: the parser holds it), then a lost segment, then `held` segments after the hole
 * (out of order: reassembly copies and holds them). With held = 0 each sends a whole GET instead.
 */
function flowsPcap(flows: number, held: number): Buffer {
  const frames: Buffer[] = [];
  const conn = (c: number) => ({ src: `10.${20 + (c >> 16)}.${(c >> 8) & 255}.${c & 255}`, dst: '10.0.0.80', sport: 40000 + (c % 20000), dport: 80 });
  const isn = (c: number) => (0x10000000 + c * 104729) >>> 0;
  const head = 'POST /upload HTTP/1.1\r\nHost: shop.example.com\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n';
  const first = Buffer.concat([Buffer.from(head, 'latin1'), Buffer.alloc(MSS - head.length, 0x61)]);
  const get = Buffer.from('GET /a HTTP/1.1\r\nHost: shop.example.com\r\n\r\n', 'latin1');
  const body = Buffer.alloc(MSS, 0x62);
  for (let c = 0; c < flows; c++) frames.push(buildFrame({ ...conn(c), seq: isn(c), flags: TCP_SYN }));
  for (let c = 0; c < flows; c++) frames.push(buildFrame({ ...conn(c), seq: isn(c) + 1, flags: TCP_ACK | TCP_PSH, payload: held ? first : get }));
  for (let k = 0; k < held; k++) {
    // Segment 1 (right after `first`) is the one lost: the held ones start at segment 2.
    for (let c = 0; c < flows; c++) frames.push(buildFrame({ ...conn(c), seq: isn(c) + 1 + (2 + k) * MSS, flags: TCP_ACK | TCP_PSH, payload: body }));
  }
  return pcapFile(frames);
}

/** In the child: run the daemon on the pcap, sample, print one JSON line. */
async function daemonChild(pcap: string, sinkUrl: string): Promise<void> {
  const cfg: Config = {
    ...DEFAULTS,
    destinations: [sinkUrl],
    pcap,
    percentageByHeader: undefined,
    markHeader: undefined,
    metricsPort: 0,
    logLevel: 'silent',
    // The pcap is read in well under a second: no hole may time out while it is read.
    holeTimeoutMs: 600_000,
  };
  const d = await startDaemon(cfg, pino({ level: 'silent' }));
  const gauge = async (name: string) => d.metrics.total(name);
  let peak = { flowsOpen: 0, heldBytes: 0, parserBytes: 0, rssMiB: 0, heapUsedMiB: 0, arrayBuffersMiB: 0 };
  let sampling = false;
  const sample = async () => {
    if (sampling) return;
    sampling = true;
    const m = process.memoryUsage();
    const s = { flowsOpen: await gauge('mirror_replay_flows_open'), heldBytes: await gauge('mirror_replay_reassembly_buffered_bytes'), parserBytes: await gauge('mirror_replay_http_buffered_bytes'), rssMiB: m.rss / 2 ** 20, heapUsedMiB: m.heapUsed / 2 ** 20, arrayBuffersMiB: m.arrayBuffers / 2 ** 20 };
    if (s.flowsOpen >= peak.flowsOpen) peak = s;
    sampling = false;
  };
  const timer = setInterval(() => void sample(), 20);
  await d.done;
  clearInterval(timer);
  const dropped = await droppedByReason(d.metrics.registry);
  const ooo = await d.metrics.total('mirror_replay_reassembly_events_total', { event: 'out_of_order' });
  process.stdout.write(`${JSON.stringify({ maxRssMiB: process.resourceUsage().maxRSS / 1024, peak, dropped, outOfOrder: ooo, heapUsedMiB: process.memoryUsage().heapUsed / 2 ** 20 })}\n`);
}

export async function main(): Promise<void> {
  const args = benchArgs();
  if (args.flag('daemon')) return daemonChild(args.opt('daemon', ''), args.opt('sink', ''));
  const flows = QUICK ? 2_000 : 10_000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-bench-rss-'));
  const sink = await startSink();
  const rows: Row[] = [];
  try {
    const cases = [
      { name: 'empty pcap (the process alone)', flows: 0, held: 0 },
      { name: `${flows.toLocaleString('en-US')} open flows, one whole GET each, nothing held`, flows, held: 0 },
      { name: `${flows.toLocaleString('en-US')} open flows, partial POST + 1 out-of-order segment each`, flows, held: 1 },
      { name: `${flows.toLocaleString('en-US')} open flows, partial POST + 4 out-of-order segments each`, flows, held: 4 },
    ];
    for (const c of cases) {
      const file = path.join(dir, `rss-${c.flows}-${c.held}.pcap`);
      fs.writeFileSync(file, flowsPcap(c.flows, c.held));
      const out = await new Promise<string>((resolve, reject) => {
        const self = fileURLToPath(new URL('./run.js', import.meta.url));
        const p = spawn(process.execPath, [self, '--child', 'rss', '--daemon', file, '--sink', sink.url], { stdio: ['ignore', 'pipe', 'inherit'] });
        let s = '';
        p.stdout!.on('data', (d) => (s += d));
        const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
        p.on('exit', (code) => {
          clearTimeout(t);
          if (code === 0) resolve(s);
          else reject(new Error(`daemon child exited with ${code}: ${s}`));
        });
      });
      const r = JSON.parse(out.trim().split('\n').pop()!) as { maxRssMiB: number; peak: { flowsOpen: number; heldBytes: number; parserBytes: number; rssMiB: number; heapUsedMiB: number; arrayBuffersMiB: number }; dropped: string | number; outOfOrder: number };
      rows.push({
        case: c.name,
        'peak RSS MiB': r.maxRssMiB,
        'flows open (peak sample)': r.peak.flowsOpen,
        'reassembly held MiB': r.peak.heldBytes / 2 ** 20,
        'parser held MiB': r.peak.parserBytes / 2 ** 20,
        'JS heap used MiB': r.peak.heapUsedMiB,
        'Buffers MiB': r.peak.arrayBuffersMiB,
        'out-of-order segments': r.outOfOrder,
        'dropped at end (counted)': r.dropped,
      });
      fs.rmSync(file);
    }
  } finally {
    await sink.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  printTable('rss: the daemon with many open flows (pcap, one process)', rows, [
    'Peak RSS is getrusage maxRSS of the daemon process; the other columns are the largest sample taken every 20 ms while the pcap was read.',
    'Each flow ends when the pcap does: its partial request is counted (http_incomplete or stream_gap), as on shutdown. Target: ≤ 200 MB with 10,000 flows holding out-of-order data.',
  ]);
}
