/**
 * Helper for ring.test.ts, run inside a network namespace with `ip netns exec`:
 *   capture IFACE PORT OTHER   servers on PORT and OTHER, three rings on IFACE; prints READY,
 *                              then one JSON line of results after "stop" arrives on stdin
 *   client HOST PORT OTHER IFACE  TCP to both ports, then raw frames injected on IFACE
 *   eperm                      open a ring on lo and print the error (run it unprivileged)
 *   bench IFACE PORT SECONDS   count frames on a ring, print pps and CPU
 *   stall IFACE PORT STALL_MS  two rings (8 blocks retired after 500 ms / after 10 ms); the first
 *                              frame blocks the thread for STALL_MS; prints READY; on "stop" sends
 *                              one last frame out of IFACE, stops the rings and prints results
 *   inject IFACE PORT PPS SECONDS  frames with seq 1, 2, … to PORT, paced; prints how many
 *   blast IFACE PORT SECONDS   inject 1500-byte frames to PORT as fast as one thread can
 * Every wait is bounded; the capture child stops itself after 30 s.
 */
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PacketRing } from '../../src/capture/ring.js';
import type { CaptureError } from '../../src/errors.js';
import * as libc from '../../src/capture/libc.js';
import { interfaceInfo } from '../../src/capture/netif.js';
import { buildFrame, type FrameSpec } from '../fixtures/frames.js';

/** Seq numbers of injected frames carry this marker in the top 16 bits and an id below. */
export const MARK = 0xc0fe;
export const INJECTED = {
  vlan: 1,
  qinq: 2,
  dot1ad: 3,
  ipv6: 4,
  jumbo: 5,
  ipv6Other: 6,
  udp: 7,
  tcpOther: 8,
  arp: 9,
} as const;

interface Seen {
  frames: number;
  whole: boolean;
  maxCapLen: number;
  nonTcp: number;
  ipv6Ext: number;
  nonTcpHead?: string;
  dports: Record<number, number>;
  sports: Record<number, number>;
  marks: Record<number, { capLen: number; wireLen: number; inBandTags: number }>;
}

function summarise(port: number): { seen: Seen; onFrame: (b: Uint8Array, o: number, c: number, w: number) => void } {
  const seen: Seen = { frames: 0, whole: true, maxCapLen: 0, nonTcp: 0, ipv6Ext: 0, dports: {}, sports: {}, marks: {} };
  const onFrame = (b: Uint8Array, o: number, capLen: number, wireLen: number): void => {
    seen.frames++;
    if (capLen !== wireLen) seen.whole = false;
    seen.maxCapLen = Math.max(seen.maxCapLen, capLen);
    let p = o + 12;
    let tags = 0;
    let type = (b[p] << 8) | b[p + 1];
    while ((type === 0x8100 || type === 0x88a8) && tags < 4) {
      p += 4;
      tags++;
      type = (b[p] << 8) | b[p + 1];
    }
    p += 2;
    let tcp = -1;
    if (type === 0x0800 && b[p + 9] === 6) tcp = p + (b[p] & 0xf) * 4;
    else if (type === 0x86dd && b[p + 6] === 6) tcp = p + 40;
    if (tcp < 0 && type === 0x86dd && [0, 43, 60, 44].includes(b[p + 6])) {
      seen.ipv6Ext++; // accepted by design (the kernel's own MLD reports, for one); decode decides
      return;
    }
    if (tcp < 0) {
      seen.nonTcp++;
      seen.nonTcpHead = Buffer.from(b.subarray(o, o + Math.min(capLen, 48))).toString('hex');
      return;
    }
    const sport = (b[tcp] << 8) | b[tcp + 1];
    const dport = (b[tcp + 2] << 8) | b[tcp + 3];
    // Keep the histograms small: the ephemeral side is folded into 0.
    const key = (x: number): number => (x === port || x < 32768 ? x : 0);
    seen.dports[key(dport)] = (seen.dports[key(dport)] ?? 0) + 1;
    seen.sports[key(sport)] = (seen.sports[key(sport)] ?? 0) + 1;
    if (((b[tcp + 4] << 8) | b[tcp + 5]) === MARK) seen.marks[(b[tcp + 6] << 8) | b[tcp + 7]] = { capLen, wireLen, inBandTags: tags };
  };
  return { seen, onFrame };
}

async function capture(iface: string, port: number, other: number): Promise<void> {
  // A fresh namespace's lo is down: that is our "interface down" case.
  let downError = '';
  try {
    await new PacketRing({ interface: 'lo', port }).run(() => {});
  } catch (e) {
    downError = `${(e as Error).name}: ${(e as Error).message}`;
  }

  const servers = [port, other].map((p) =>
    net.createServer((s) => s.on('data', () => {}).on('error', () => {})).listen(p, '0.0.0.0'),
  );
  const one = summarise(port);
  const both = summarise(port);
  const rings = {
    one: new PacketRing({ interface: iface, port, ringMiB: 8, blockKiB: 256 }),
    both: new PacketRing({ interface: iface, port, bothDirections: true, ringMiB: 8, blockKiB: 256 }),
    throwing: new PacketRing({ interface: iface, port, ringMiB: 4, blockKiB: 1024 }),
  };
  let throwingFrames = 0;
  const runs = [
    rings.one.run(one.onFrame),
    rings.both.run(both.onFrame),
    rings.throwing.run(() => {
      throwingFrames++;
      throw new Error('handler bug');
    }),
  ];
  const settled = Promise.allSettled(runs);
  await new Promise((r) => setTimeout(r, 100));
  process.stdout.write('READY\n');

  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 30_000);
    createInterface({ input: process.stdin }).on('line', (l) => {
      if (l.trim() === 'stop') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const t0 = performance.now();
  for (const r of Object.values(rings)) r.stop();
  const results = await settled;
  const stopMs = performance.now() - t0;
  for (const s of servers) s.close();
  const out = {
    downError,
    stopMs,
    runs: results.map((r) => (r.status === 'fulfilled' ? 'ok' : String((r as PromiseRejectedResult).reason))),
    one: { seen: one.seen, stats: rings.one.stats(), ring: rings.one.ringStats() },
    both: { seen: both.seen, stats: rings.both.stats(), ring: rings.both.ringStats() },
    throwing: { frames: throwingFrames, stats: rings.throwing.stats(), handlerErrors: rings.throwing.stats().handlerErrors },
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}

function rawSocket(iface: string): { send: (f: Uint8Array) => void; close: () => void } {
  const fd = libc.socket(libc.AF_PACKET, libc.SOCK_RAW | libc.SOCK_CLOEXEC, 0);
  if (fd < 0) throw libc.syscallError('socket');
  const sll = Buffer.alloc(20);
  sll.writeUInt16LE(libc.AF_PACKET, 0);
  sll.writeInt32LE(interfaceInfo(iface).index, 4);
  sll[11] = 6;
  return {
    send: (f) => {
      if (Number(libc.sendto(fd, f, f.length, 0, sll, sll.length)) !== f.length) throw libc.syscallError(`sendto(${f.length})`);
    },
    close: () => void libc.close(fd),
  };
}

/** Run unprivileged: prints the error PacketRing gives without CAP_NET_RAW. */
async function eperm(): Promise<void> {
  try {
    await new PacketRing({ interface: 'lo', port: 80 }).run(() => {});
    process.stdout.write(JSON.stringify({ error: null }) + '\n');
  } catch (e) {
    const err = e as CaptureError;
    process.stdout.write(JSON.stringify({ name: err.name, code: err.code, errno: err.errno, message: err.message }) + '\n');
  }
}

async function tcpSend(host: string, port: number, bytes: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcp to ${port} timed out`)), 10_000);
    const c = net.connect(port, host, () => c.end(Buffer.alloc(bytes, 0x61)));
    c.on('error', reject).on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    c.resume();
  });
}

async function client(host: string, port: number, other: number, iface: string): Promise<void> {
  await tcpSend(host, port, 256 * 1024);
  await tcpSend(host, other, 256 * 1024);
  const spec = (id: number, extra: Partial<FrameSpec> = {}): FrameSpec => ({
    src: '10.213.255.1',
    dst: '10.213.255.2',
    sport: 40000,
    dport: port,
    seq: ((MARK << 16) | id) >>> 0,
    payload: 'GET / HTTP/1.1\r\n\r\n',
    ...extra,
  });
  const v6 = { src: 'fd00::1', dst: 'fd00::2' };
  const dot1ad = buildFrame(spec(INJECTED.dot1ad, { vlans: [30, 40] }));
  dot1ad.writeUInt16BE(0x88a8, 12);
  const udp = buildFrame(spec(INJECTED.udp));
  udp[14 + 9] = 17;
  const arp = Buffer.alloc(60);
  arp.fill(0xff, 0, 6);
  arp.writeUInt16BE(0x0806, 12);
  const frames = [
    buildFrame(spec(INJECTED.vlan, { vlans: [10] })),
    buildFrame(spec(INJECTED.qinq, { vlans: [10, 20] })),
    dot1ad,
    buildFrame(spec(INJECTED.ipv6, v6)),
    buildFrame(spec(INJECTED.jumbo, { payload: Buffer.alloc(9014 - 14 - 20 - 20, 0x62) })),
    buildFrame(spec(INJECTED.ipv6Other, { ...v6, dport: other })),
    udp,
    buildFrame(spec(INJECTED.tcpOther, { dport: other })),
    arp,
  ];
  const sock = rawSocket(iface);
  try {
    for (const f of frames) sock.send(f);
  } finally {
    sock.close();
  }
  process.stdout.write(JSON.stringify({ injected: frames.map((f) => f.length) }) + '\n');
}

async function bench(iface: string, port: number, seconds: number): Promise<void> {
  const ring = new PacketRing({ interface: iface, port });
  let frames = 0;
  const done = ring.run(() => void frames++);
  process.stdout.write('READY\n');
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu = process.cpuUsage(cpu0);
  const ms = performance.now() - t0;
  ring.stop();
  await done;
  const st = ring.stats();
  process.stdout.write(
    JSON.stringify({ frames, pps: Math.round((frames / ms) * 1000), cpuPct: Math.round(((cpu.user + cpu.system) / 1000 / ms) * 100), kernelDrops: st.kernelDrops, polls: ring.ringStats().polls, blocks: ring.ringStats().blocks }) + '\n',
  );
}

interface StallReport {
  seen: number;
  inOrder: boolean;
  /** Per jump in the seq numbers: whether onLoss was called between the frames either side. */
  gaps: Array<{ after: number; next: number; lossBefore: boolean }>;
  lossCalls: number;
  kernelDrops: number;
  /** [Date.now(), backlogTime()] every 20 ms while a backlog was reported. */
  backlog: Array<[number, number]>;
  caughtUpAtEnd: boolean;
  /** The frame sent out of IFACE just before stop(): only stop()'s drain can hand it over. */
  stopMarkSeen: boolean;
}

const STOP_MARK = 0xfffffff0;

/** Rings that see the same frames; the first frame stalls the whole thread, as a SIGSTOP or a long GC would. */
async function stall(iface: string, port: number, stallMs: number): Promise<void> {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  let stalled = false;
  const watch = (retireMs: number) => {
    const r: StallReport = { seen: 0, inOrder: true, gaps: [], lossCalls: 0, kernelDrops: 0, backlog: [], caughtUpAtEnd: false, stopMarkSeen: false };
    let last = 0;
    let lossSinceLast = false;
    const ring = new PacketRing({
      interface: iface,
      port,
      ringMiB: 1,
      blockKiB: 128,
      retireMs,
      onLoss: () => {
        r.lossCalls++;
        lossSinceLast = true;
      },
    });
    const run = ring.run((b, o) => {
      // Only the injected frames (the kernel's own IPv6 MLD reports pass the filter by design).
      if (((b[o + 12] << 8) | b[o + 13]) !== 0x0800 || ((b[o + 34] << 8) | b[o + 35]) !== 40001) return;
      const seq = ((b[o + 38] << 24) | (b[o + 39] << 16) | (b[o + 40] << 8) | b[o + 41]) >>> 0;
      if (seq === STOP_MARK) {
        r.stopMarkSeen = true;
        return;
      }
      r.seen++;
      if (seq <= last) r.inOrder = false;
      if (seq !== last + 1) r.gaps.push({ after: last, next: seq, lossBefore: lossSinceLast });
      last = seq;
      lossSinceLast = false;
      if (!stalled) {
        stalled = true;
        Atomics.wait(sleeper, 0, 0, stallMs);
      }
    });
    const sampler = setInterval(() => {
      const t = ring.backlogTime();
      if (t !== null) r.backlog.push([Date.now(), t]);
    }, 20);
    return { ring, run, r, sampler };
  };
  const rings = [watch(500), watch(10)];
  await new Promise((res) => setTimeout(res, 100));
  process.stdout.write('READY\n');
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 30_000);
    createInterface({ input: process.stdin }).on('line', (l) => {
      if (l.trim() !== 'stop') return;
      clearTimeout(timer);
      resolve();
    });
  });
  for (const w of rings) w.r.caughtUpAtEnd = w.ring.backlogTime() === null;
  // Outgoing frames reach the rings too; this one lands in each kernel's current block.
  const sock = rawSocket(iface);
  sock.send(buildFrame({ src: '10.213.255.2', dst: '10.213.255.1', sport: 40001, dport: port, seq: STOP_MARK, payload: 'stop' }));
  sock.close();
  for (const w of rings) w.ring.stop();
  await Promise.all(rings.map((w) => w.run));
  for (const w of rings) {
    clearInterval(w.sampler);
    w.r.kernelDrops = w.ring.stats().kernelDrops;
  }
  process.stdout.write(JSON.stringify({ deep: rings[0].r, shallow: rings[1].r }) + '\n');
  process.exit(0);
}

/** Small frames with seq 1, 2, … paced at `pps` for `seconds`. */
async function inject(iface: string, port: number, pps: number, seconds: number): Promise<void> {
  const sock = rawSocket(iface);
  const t0 = performance.now();
  let sent = 0;
  try {
    while (performance.now() - t0 < seconds * 1000) {
      const due = Math.floor(((performance.now() - t0) / 1000) * pps);
      while (sent < due) {
        sent++;
        sock.send(buildFrame({ src: '10.213.255.1', dst: '10.213.255.2', sport: 40001, dport: port, seq: sent, payload: 'x'.repeat(20) }));
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    sock.close();
  }
  process.stdout.write(JSON.stringify({ sent }) + '\n');
}

function blast(iface: string, port: number, seconds: number): void {
  const sock = rawSocket(iface);
  const f = buildFrame({ src: '10.213.255.1', dst: '10.213.255.2', sport: 40000, dport: port, seq: 1, payload: Buffer.alloc(1500 - 20 - 20, 0x63) });
  const end = performance.now() + seconds * 1000;
  let sent = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 1000; i++) sock.send(f);
    sent += 1000;
  }
  sock.close();
  process.stdout.write(JSON.stringify({ sent, pps: Math.round(sent / seconds) }) + '\n');
}

const [mode, ...args] = process.argv.slice(2);
const main = async (): Promise<void> => {
  // ring.test.ts imports this file for INJECTED, and `node --test dist/test/` runs it with no
  // arguments: act only as the entry point with a mode.
  if (process.argv[1] !== fileURLToPath(import.meta.url) || mode === undefined) return;
  if (mode === 'capture') await capture(args[0], Number(args[1]), Number(args[2]));
  else if (mode === 'eperm') await eperm();
  else if (mode === 'client') await client(args[0], Number(args[1]), Number(args[2]), args[3]);
  else if (mode === 'bench') await bench(args[0], Number(args[1]), Number(args[2]));
  else if (mode === 'blast') blast(args[0], Number(args[1]), Number(args[2]));
  else if (mode === 'stall') await stall(args[0], Number(args[1]), Number(args[2]));
  else if (mode === 'inject') await inject(args[0], Number(args[1]), Number(args[2]), Number(args[3]));
  else throw new Error(`unknown mode ${mode}`);
};
main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
