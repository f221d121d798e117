/**
 * Timed replay: a 30-second recording (written by the recorder, as --record does) of requests on
 * 4 connections at irregular gaps (5–200 ms, a fixed pseudo-random sequence), replayed with
 * --speed 1 and --speed 2 by the whole daemon to an HTTP server in this process, which notes when
 * each request (by its X-Id) arrives. Prints how far the gaps between consecutive requests, and
 * the whole span, are from the recorded ones ÷ speed (the bar: within 10%), relative and in ms:
 * on arrival, a gap carries the replay's own jitter (a timer's ms, the connection), which only
 * short gaps feel.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Recorder } from '../../src/capture/record.js';
import { DEFAULTS, type Config } from '../../src/config/config.js';
import { startDaemon } from '../../src/daemon.js';
import { buildFrame, TCP_ACK, TCP_PSH, TCP_SYN } from '../fixtures/frames.js';
import { printTable, QUICK, type Row } from './util.js';

const CONNS = 4;

/** Recorded times (µs) of each request, and the directory holding the recording. */
async function recording(dir: string, seconds: number): Promise<number[]> {
  const rec = new Recorder({ dir, maxFileBytes: 0, maxFileMs: 0, maxFiles: 0, gzip: false, bufferBytes: 1 << 28, snapLen: 262144 });
  const t0 = 1_700_000_000_000_000;
  const seq = new Array<number>(CONNS).fill(1000);
  for (let c = 0; c < CONNS; c++) rec.frame(buildFrame({ src: `10.9.0.${c + 1}`, dst: '10.0.0.80', sport: 30000 + c, dport: 80, seq: seq[c]++, flags: TCP_SYN }), 0, 54, 54, undefined, t0 + c, 'vxlan0');
  const times: number[] = [];
  let x = 12345;
  for (let t = t0 + 10_000, i = 0; t < t0 + seconds * 1e6; i++) {
    const c = i % CONNS;
    const payload = `GET /t/${i} HTTP/1.1\r\nHost: a\r\nX-Id: ${i}\r\n\r\n`;
    const f = buildFrame({ src: `10.9.0.${c + 1}`, dst: '10.0.0.80', sport: 30000 + c, dport: 80, seq: seq[c], ack: 1, flags: TCP_ACK | TCP_PSH, payload });
    seq[c] += payload.length;
    rec.frame(f, 0, f.length, f.length, undefined, t, 'vxlan0');
    times.push(t);
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    t += 5_000 + (x % 195_000);
  }
  await rec.close();
  return times;
}

export async function main(): Promise<void> {
  const seconds = QUICK ? 6 : 30;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-bench-timing-'));
  const arrivals = new Map<string, number>();
  const server = http.createServer((req, res) => {
    arrivals.set(String(req.headers['x-id']), performance.now());
    req.resume().on('end', () => res.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const rows: Row[] = [];
  try {
    const times = await recording(dir, seconds);
    for (const speed of [1, 2]) {
      arrivals.clear();
      const cfg: Config = { ...DEFAULTS, destinations: [url], pcap: dir, speed, percentageByHeader: undefined, markHeader: undefined, metricsPort: 0, logLevel: 'silent' };
      const d = await startDaemon(cfg, pino({ level: 'silent' }));
      await d.done;
      const got = times.map((_, i) => arrivals.get(String(i)));
      const errs: number[] = [];
      const errsLong: number[] = [];
      const absMs: number[] = [];
      for (let i = 1; i < times.length; i++) {
        const a = got[i - 1];
        const b = got[i];
        if (a === undefined || b === undefined) continue;
        const want = (times[i] - times[i - 1]) / 1000 / speed;
        errs.push(Math.abs(b - a - want) / want);
        absMs.push(Math.abs(b - a - want));
        if (want >= 50) errsLong.push(Math.abs(b - a - want) / want);
      }
      errs.sort((p, q) => p - q);
      absMs.sort((p, q) => p - q);
      const span = (got[got.length - 1]! - got[0]!) / (((times[times.length - 1] - times[0]) / 1000) / speed);
      rows.push({
        speed,
        requests: times.length,
        arrived: got.filter((g) => g !== undefined).length,
        'recorded s': (times[times.length - 1] - times[0]) / 1e6,
        'replayed s': (got[got.length - 1]! - got[0]!) / 1e3,
        'span error %': Math.abs(span - 1) * 100,
        'gap error % median': errs[Math.floor(errs.length / 2)] * 100,
        'gap error % p95': errs[Math.floor(errs.length * 0.95)] * 100,
        'gap error ms median': absMs[Math.floor(absMs.length / 2)],
        'gap error ms p95': absMs[Math.floor(absMs.length * 0.95)],
        'gaps within 10%': `${((100 * errs.filter((e) => e <= 0.1).length) / errs.length).toFixed(1)}%`,
        'gaps ≥ 50 ms within 10%': `${((100 * errsLong.filter((e) => e <= 0.1).length) / errsLong.length).toFixed(1)}%`,
      });
    }
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  printTable(`timed replay of a ${seconds}-second recording (gap = between consecutive requests; error vs recorded ÷ speed)`, rows);
}
