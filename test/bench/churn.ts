/**
 * Connection churn: HTTP/1.0 GETs, each over a new TCP connection (what a connection-per-request
 * client makes replay do), to the bench sink on loopback, which answers with HTTP/1.0 and closes.
 * Client CPU per request (the sink's CPU is not counted) and wall requests/s, at 1, 8 and 64
 * connections at a time, for:
 *
 *   C floor     churn-floor.c (gcc -O2, here): socket, non-blocking connect, one epoll_ctl, write,
 *               read until complete or EOF, close; its own getrusage
 *   Node floor  net.connect, write on 'connect', destroy on the first 'data'; process.cpuUsage
 *   Node handle the same loop on Node's TCP handle below net.Socket (process.binding('tcp_wrap')):
 *               what net.Socket itself costs. The daemon does not use the handle (see README there)
 *   ours        Destination (src/replay/destination.ts) sending minorVersion 0 requests: each gets
 *               a connection of its own (h1-client.ts's one-shot path, on net.Socket)
 *
 * The same request bytes for all three. Each runs closed loop (a new connection as soon as one
 * ends) until N requests or the time limit; the three alternate, --rounds times, and the table
 * gives the median and the minimum of CPU µs/request over the rounds.
 *
 *   npm run bench -- churn [--rounds=3] [--quick]
 *   node dist/test/bench/run.js churn --client=ours [--conns=64] [--port=P]
 *       one client alone (c, handle, node, ours), one JSON line; with --port, against a sink
 *       already running (node dist/test/bench/sink.js), so that strace -f / perf see the client only
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Destination, type OutgoingRequest } from '../../src/replay/destination.js';
import { benchArgs, type ClientRun, closedLoop, hasTool, printTable, QUICK, ROOT, type Row, settlingObserver, startSink } from './util.js';

const HEADERS = [
  'Host', 'shop.example.com', 'User-Agent', 'Mozilla/5.0 (X11; Linux x86_64) bench/1.0', 'Accept', 'application/json',
  'Accept-Encoding', 'gzip, deflate', 'X-Request-Id', '7f9c2ba4-e88f-11ee-a1b2-0242ac120002', 'X-Forwarded-For', '10.1.2.3',
];
const TARGET = '/api/v1/items?id=12345';
let wire = `GET ${TARGET} HTTP/1.0\r\n`;
for (let i = 0; i < HEADERS.length; i += 2) wire += `${HEADERS[i]}: ${HEADERS[i + 1]}\r\n`;
/** The request's bytes, as Destination writes them for the request below (h1-client.test.ts checks that). */
const WIRE = wire + '\r\n';

type Run = ClientRun;
type Client = (port: number, conns: number, n: number, maxMs: number) => Promise<Run>;

const nodeFloor: Client = (port, conns, n, maxMs) =>
  closedLoop((ok, fail) => {
    let settled = false;
    const end = (good: boolean) => {
      if (settled) return;
      settled = true;
      s.destroy();
      (good ? ok : fail)();
    };
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => s.write(WIRE, 'latin1'));
    s.on('data', () => end(true));
    s.on('end', () => end(false));
    s.on('error', () => end(false));
  }, n, maxMs, conns);

interface HandleBinding {
  TCP: new (type: number) => {
    connect(req: object, host: string, port: number): number;
    useUserBuffer(b: Uint8Array): void;
    readStart(): number;
    writeLatin1String(req: object, s: string): number;
    close(): void;
    onread: () => void;
  };
  TCPConnectWrap: new () => { oncomplete: (status: number) => void };
  WriteWrap: new () => { handle: unknown; oncomplete: () => void; async: boolean };
  socketType: number;
  state: Int32Array;
  kReadBytesOrError: number;
}

/** Node's TCP handle and its write/connect requests (internal: a floor to measure, nothing the daemon uses), or null. */
function handleBinding(): HandleBinding | null {
  try {
    const get = (process as unknown as { binding: (n: string) => unknown }).binding;
    const tcp = get('tcp_wrap') as { TCP: HandleBinding['TCP']; TCPConnectWrap: HandleBinding['TCPConnectWrap']; constants: { SOCKET: number } };
    const sw = get('stream_wrap') as { WriteWrap: HandleBinding['WriteWrap']; streamBaseState: Int32Array; kReadBytesOrError: number };
    if (typeof tcp.TCP !== 'function' || typeof sw.WriteWrap !== 'function' || !(sw.streamBaseState instanceof Int32Array)) return null;
    return { TCP: tcp.TCP, TCPConnectWrap: tcp.TCPConnectWrap, WriteWrap: sw.WriteWrap, socketType: tcp.constants.SOCKET, state: sw.streamBaseState, kReadBytesOrError: sw.kReadBytesOrError };
  } catch {
    return null;
  }
}

/** The minimal loop on the TCP handle: what is left of a connection without net.Socket. */
const handleFloor: Client = (port, conns, n, maxMs) => {
  const b = handleBinding();
  if (!b) return Promise.resolve({ done: 0, errors: n, ms: 1, cpuMs: 0 });
  const buf = Buffer.allocUnsafe(64 * 1024);
  return closedLoop((ok, fail) => {
    const h = new b.TCP(b.socketType);
    let settled = false;
    const end = (good: boolean) => {
      if (settled) return;
      settled = true;
      h.close();
      (good ? ok : fail)();
    };
    const req = new b.TCPConnectWrap();
    req.oncomplete = (status) => {
      if (status < 0) return end(false);
      h.useUserBuffer(buf);
      h.onread = () => end(b.state[b.kReadBytesOrError] > 0);
      h.readStart();
      const w = new b.WriteWrap();
      w.handle = h;
      w.oncomplete = () => {};
      w.async = false;
      if (h.writeLatin1String(w, WIRE) < 0) end(false);
    };
    if (h.connect(req, '127.0.0.1', port) < 0) end(false);
  }, n, maxMs, conns);
};

const ours: Client = (port, conns, n, maxMs) => runDestination(port, conns, n, maxMs);

async function runDestination(port: number, conns: number, n: number, maxMs: number): Promise<Run> {
  const { obs, pending } = settlingObserver();
  const d = new Destination(`http://127.0.0.1:${port}`, { maxConcurrency: conns, maxQueue: 1_000_000, maxQueueBytes: 2 ** 40, timeoutMs: 30_000 }, obs);
  const req: OutgoingRequest = { method: 'GET', target: TARGET, headers: HEADERS, body: Buffer.alloc(0), chunked: false, trailers: [], minorVersion: 0 };
  const r = await closedLoop((ok, fail) => {
    pending.push([ok, fail]);
    d.enqueue(req);
  }, n, maxMs, conns);
  await d.drain(1_000);
  return r;
}

/** Compiles churn-floor.c into a temporary directory; null (and why) when gcc is missing or fails. */
function buildFloor(): { bin: string; dir: string } | string {
  if (!hasTool('gcc')) return 'gcc not found (apt-get install -y gcc)';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-churn-'));
  const bin = path.join(dir, 'churn-floor');
  const r = spawnSync('gcc', ['-O2', '-o', bin, path.join(ROOT, 'test/bench/churn-floor.c')], { encoding: 'utf8' });
  if (r.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    return `gcc failed: ${r.stderr}`;
  }
  return { bin, dir };
}

function cFloor(bin: string): Client {
  return (port, conns, n, maxMs) =>
    new Promise((resolve, reject) => {
      const p = spawn(bin, [String(port), String(n), String(conns), String(maxMs / 1000), WIRE], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      const t = setTimeout(() => p.kill('SIGKILL'), maxMs + 10_000);
      p.on('exit', (code) => {
        clearTimeout(t);
        if (code !== 0) return reject(new Error(`churn-floor exited with ${code}`));
        const j = JSON.parse(out) as { done: number; errors: number; stuck: number; seconds: number; cpuSeconds: number };
        resolve({ done: j.done, errors: j.errors + j.stuck, ms: j.seconds * 1e3, cpuMs: j.cpuSeconds * 1e3 });
      });
    });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The Node clients by name, for --client. */
const NODE_CLIENTS: Record<string, Client> = { node: nodeFloor, handle: handleFloor, ours };

/** `--client=NAME`: one client alone, warmed up, then one measured run; prints one JSON line. */
async function single(name: string, conns: number, port: number | null): Promise<void> {
  const floor = name === 'c' ? buildFloor() : null;
  if (typeof floor === 'string') throw new Error(floor);
  const c = floor ? cFloor(floor.bin) : NODE_CLIENTS[name];
  if (!c) throw new Error(`--client: one of c, ${Object.keys(NODE_CLIENTS).join(', ')}`);
  const sink = port === null ? await startSink() : null;
  const p = sink?.port ?? port!;
  try {
    await c(p, 8, 2_000, 2_000);
    const r = await c(p, conns, QUICK ? 2_000 : 20_000, 10_000);
    console.log(JSON.stringify({ client: name, conns, done: r.done, errors: r.errors, cpuUsPerReq: +((r.cpuMs * 1e3) / Math.max(1, r.done)).toFixed(1), reqPerS: Math.round((r.done * 1e3) / r.ms) }));
  } finally {
    await sink?.stop();
    if (floor) fs.rmSync(floor.dir, { recursive: true, force: true });
  }
}

export async function main(): Promise<void> {
  const args = benchArgs();
  const only = args.opt('client', '');
  if (only) return single(only, Number(args.opt('conns', '64')), args.opt('port', '') ? Number(args.opt('port', '')) : null);
  const rounds = Number(args.opt('rounds', QUICK ? '1' : '3'));
  const n = QUICK ? 2_000 : 20_000;
  const maxMs = QUICK ? 1_000 : 3_000;
  const floor = buildFloor();
  if (typeof floor === 'string') console.log(`C floor skipped: ${floor}`);
  const clients: Array<[string, Client]> = [...(typeof floor === 'string' ? [] : [['C floor', cFloor(floor.bin)] as [string, Client]]), ['Node handle', handleFloor], ['Node floor', nodeFloor], ['ours', ours]];
  const sink = await startSink();
  const rows: Row[] = [];
  try {
    for (const [, c] of clients) await c(sink.port, 8, 2_000, 1_000); // warm-up
    for (const conns of [1, 8, 64]) {
      const got = new Map<string, Run[]>(clients.map(([name]) => [name, []]));
      for (let r = 0; r < rounds; r++) for (const [name, c] of clients) got.get(name)!.push(await c(sink.port, conns, n, maxMs));
      const cpu = (name: string) => got.get(name)!.map((x) => (x.cpuMs * 1e3) / Math.max(1, x.done));
      const base = typeof floor === 'string' ? 0 : median(cpu('C floor'));
      for (const [name] of clients) {
        const runs = got.get(name)!;
        rows.push({
          connections: conns,
          client: name,
          'CPU µs/req (median)': median(cpu(name)),
          'CPU µs/req (min)': Math.min(...cpu(name)),
          '÷ C floor': base ? `${(median(cpu(name)) / base).toFixed(2)}×` : 'n/a',
          'req/s (median)': median(runs.map((x) => (x.done * 1e3) / x.ms)),
          'requests (median)': median(runs.map((x) => x.done)),
          errors: runs.reduce((t, x) => t + x.errors, 0),
        });
      }
    }
  } finally {
    await sink.stop();
    if (typeof floor !== 'string') fs.rmSync(floor.dir, { recursive: true, force: true });
  }
  printTable(`churn: HTTP/1.0 GETs, a new connection each, to a node:net sink in another process (${rounds} rounds, load ${os.loadavg()[0].toFixed(2)})`, rows, [
    'CPU µs/req: the client process only (user + system), median over the rounds (min in brackets); req/s: median wall rate.',
  ]);
}

