import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { PcapFileSource } from '../../src/capture/pcap.js';
import { DEFAULTS, type Config } from '../../src/config/config.js';
import { startDaemon } from '../../src/daemon.js';
import { Decoder } from '../../src/decode/decoder.js';
import { CaptureError, PcapFormatError } from '../../src/errors.js';
import { HttpRequestParser } from '../../src/http/parser.js';
import { DEFAULT_TABLE_OPTIONS, FlowTable } from '../../src/reassemble/table.js';
import { buildFrame, pcapFile } from '../fixtures/frames.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mr-pcap-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Got {
  data: Buffer;
  offset: number;
  capLen: number;
  wireLen: number;
  linkType?: number;
}

async function readAll(path: string): Promise<{ frames: Got[]; src: PcapFileSource }> {
  const src = new PcapFileSource(path);
  const frames: Got[] = [];
  await src.run((buf, offset, capLen, wireLen, linkType) => {
    frames.push({ data: Buffer.from(buf.subarray(offset, offset + capLen)), offset, capLen, wireLen, linkType });
  });
  return { frames, src };
}

async function write(name: string, bytes: Buffer): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, bytes);
  return p;
}

/** Rewrites a little-endian pcap from pcapFile() as big-endian (and optionally ns magic). */
function toBigEndian(le: Buffer, magic = 0xa1b2c3d4): Buffer {
  const be = Buffer.from(le);
  be.writeUInt32BE(magic, 0);
  be.writeUInt16BE(le.readUInt16LE(4), 4);
  be.writeUInt16BE(le.readUInt16LE(6), 6);
  for (const o of [8, 12, 16, 20]) be.writeUInt32BE(le.readUInt32LE(o), o);
  let o = 24;
  while (o < le.length) {
    for (let i = 0; i < 16; i += 4) be.writeUInt32BE(le.readUInt32LE(o + i), o + i);
    o += 16 + le.readUInt32LE(o + 8);
  }
  return be;
}

function frames(n: number, size = 0): Buffer[] {
  return Array.from({ length: n }, (_, i) =>
    buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 40000 + (i % 100), dport: 80, seq: i, payload: Buffer.alloc(size + (i % 7), i & 0xff) }),
  );
}

test('pcap: frames come back byte for byte with capLen and wireLen', async () => {
  const input = frames(50);
  const { frames: got, src } = await readAll(await write('a.pcap', pcapFile(input)));
  assert.equal(got.length, input.length);
  got.forEach((g, i) => {
    assert.deepEqual(g.data, input[i]);
    assert.equal(g.capLen, input[i].length);
    assert.equal(g.wireLen, input[i].length);
  });
  // Offsets are into the source's own buffer: past the global header, then one record apart.
  assert.equal(got[0].offset, 24 + 16);
  assert.equal(got[1].offset, got[0].offset + got[0].capLen + 16);
  const st = src.stats();
  assert.equal(st.packets, 50);
  assert.equal(st.bytes, input.reduce((s, f) => s + f.length, 0));
  assert.equal(st.truncated, 0);
  assert.equal(st.kernelDrops, 0);
});

test('pcap: snap-length records report capLen < wireLen and count as truncated', async () => {
  const f = frames(2, 200);
  const path = await write('snap.pcap', pcapFile([{ data: f[0], capLen: 60 }, f[1]]));
  const { frames: got, src } = await readAll(path);
  assert.equal(got[0].capLen, 60);
  assert.equal(got[0].wireLen, f[0].length);
  assert.deepEqual(got[0].data, f[0].subarray(0, 60));
  assert.deepEqual(got[1].data, f[1]);
  assert.equal(src.stats().truncated, 1);
});

test('pcap: big-endian and nanosecond files', async () => {
  const input = frames(20);
  for (const [name, bytes] of [
    ['be.pcap', toBigEndian(pcapFile(input))],
    ['be-ns.pcap', toBigEndian(pcapFile(input), 0xa1b23c4d)],
    ['le-ns.pcap', (() => { const b = pcapFile(input); b.writeUInt32LE(0xa1b23c4d, 0); return b; })()],
  ] as const) {
    const { frames: got } = await readAll(await write(name, bytes));
    assert.deepEqual(got.map((g) => g.data), input, name);
  }
});

test('pcap: a file larger than the read chunk, with 64 KiB frames straddling chunk edges', async () => {
  const big = frames(40, 65000); // ~2.6 MB, several 1 MiB chunks
  const { frames: got } = await readAll(await write('big.pcap', pcapFile(big)));
  assert.equal(got.length, big.length);
  got.forEach((g, i) => assert.ok(g.data.equals(big[i]), `frame ${i}`));
});

test('pcap: an empty capture (header only) ends cleanly', async () => {
  const { frames: got } = await readAll(await write('empty.pcap', pcapFile([])));
  assert.equal(got.length, 0);
});

test('pcap: bad magic, unknown link types, short files', async () => {
  const isFormat = (re: RegExp) => (e: unknown) => e instanceof PcapFormatError && e.code === 'MR_PCAP_FORMAT' && re.test(e.message);
  await assert.rejects(readAll(await write('bad.pcap', Buffer.alloc(100, 0x42))), isFormat(/not a pcap or pcapng file/));
  const usb = pcapFile(frames(1));
  usb.writeUInt32LE(189, 20); // LINKTYPE_USB_LINUX_MMAPPED
  await assert.rejects(readAll(await write('usb.pcap', usb)), isFormat(/link type 189 is not supported; supported: NULL \(0\), ETHERNET \(1\)/));
  await assert.rejects(readAll(await write('short.pcap', pcapFile([]).subarray(0, 10))), isFormat(/too short/));
  await assert.rejects(readAll(await write('tiny.pcap', Buffer.alloc(2))), isFormat(/too short/));
  await assert.rejects(readAll(join(dir, 'missing.pcap')), (e: unknown) => e instanceof CaptureError);
});

test('pcap: a truncated last record rejects after the complete ones were delivered', async () => {
  const input = frames(3);
  const whole = pcapFile(input);
  for (const cut of [whole.length - 1, whole.length - input[2].length - 8]) {
    const src = new PcapFileSource(await write(`trunc-${cut}.pcap`, whole.subarray(0, cut)));
    let n = 0;
    await assert.rejects(src.run(() => void n++), (e: unknown) => e instanceof PcapFormatError && /truncated record/.test(e.message));
    assert.equal(n, 2);
  }
});

test('pcap: a record claiming more than 256 KiB is a format error', async () => {
  const b = pcapFile(frames(2));
  b.writeUInt32LE(300000, 24 + 8);
  await assert.rejects(readAll(await write('huge.pcap', b)), (e: unknown) => e instanceof PcapFormatError && /claims 300000/.test(e.message));
});

test('pcap: stop() from the handler ends run() early', async () => {
  const src = new PcapFileSource(await write('stop.pcap', pcapFile(frames(100))));
  let n = 0;
  await src.run(() => {
    if (++n === 10) src.stop();
  });
  assert.equal(n, 10);
});

// --- pcapng, built block by block (the fixtures below come from Wireshark's own tools) ---

/** One pcapng block: type, total length, body padded to 4, total length again. */
function block(type: number, body: Buffer, le = true): Buffer {
  const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
  const b = Buffer.alloc(12 + padded.length);
  const w = (v: number, o: number) => (le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
  w(type, 0);
  w(b.length, 4);
  padded.copy(b, 8);
  w(b.length, b.length - 4);
  return b;
}
function words(le: boolean, ...v: number[]): Buffer {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, i) => (le ? b.writeUInt32LE(x, 4 * i) : b.writeUInt32BE(x, 4 * i)));
  return b;
}
function shb(le = true): Buffer {
  const body = Buffer.alloc(16);
  if (le) {
    body.writeUInt32LE(0x1a2b3c4d, 0);
    body.writeUInt16LE(1, 4);
  } else {
    body.writeUInt32BE(0x1a2b3c4d, 0);
    body.writeUInt16BE(1, 4);
  }
  body.fill(0xff, 8); // section length unknown
  return block(0x0a0d0d0a, body, le);
}
function idb(linkType: number, snapLen = 0, le = true): Buffer {
  const body = Buffer.alloc(8);
  if (le) body.writeUInt16LE(linkType, 0);
  else body.writeUInt16BE(linkType, 0);
  body.set(words(le, snapLen), 4);
  return block(1, body, le);
}
function epb(iface: number, frame: Buffer, opts: { le?: boolean; capLen?: number; options?: Buffer } = {}): Buffer {
  const le = opts.le ?? true;
  const cap = opts.capLen ?? frame.length;
  const data = frame.subarray(0, cap);
  const padded = Buffer.concat([data, Buffer.alloc((4 - (cap % 4)) % 4)]);
  return block(6, Buffer.concat([words(le, iface, 0, 0, cap, frame.length), padded, opts.options ?? Buffer.alloc(0)]), le);
}
function spb(frame: Buffer, le = true, capLen = frame.length): Buffer {
  return block(3, Buffer.concat([words(le, frame.length), frame.subarray(0, capLen)]), le);
}

test('pcapng: both byte orders, several sections, Simple Packet Blocks, other blocks skipped', async () => {
  const f = frames(6, 100);
  const comment = Buffer.from([1, 0, 5, 0, ...Buffer.from('hello'), 0, 0, 0, 0, 0, 0, 0]); // opt_comment, opt_endofopt
  const file = Buffer.concat([
    shb(),
    idb(1, 0),
    block(4, Buffer.alloc(40, 1)), // Name Resolution Block
    epb(0, f[0], { options: comment }),
    spb(f[1]),
    block(0x0bad, Buffer.alloc(1_500_000, 2)), // custom block bigger than the read chunk
    epb(0, f[2], { capLen: 60 }),
    block(5, Buffer.alloc(20)), // Interface Statistics Block
    shb(false),
    idb(1, 81, false), // snap length 81: a Simple Packet Block is cut there, not at its padding
    idb(228, 0, false),
    spb(f[3], false, 81),
    epb(0, f[4], { le: false }),
    epb(1, f[5].subarray(14), { le: false }), // raw IPv4 on interface 1
    // Obsolete Packet Block (pcapng 1.0): 16-bit interface id, 16-bit drop count.
    (() => { const b = epb(0, f[0], { le: false }); b.writeUInt32BE(2, 0); b.writeUInt16BE(1, 8); b.writeUInt16BE(9, 10); return b; })(),
  ]);
  const { frames: got, src } = await readAll(await write('multi.pcapng', file));
  assert.deepEqual(got.map((g) => [g.capLen, g.wireLen, g.linkType]), [
    [f[0].length, f[0].length, 1],
    [f[1].length, f[1].length, 1],
    [60, f[2].length, 1],
    [81, f[3].length, 1],
    [f[4].length, f[4].length, 1],
    [f[5].length - 14, f[5].length - 14, 228],
    [f[0].length, f[0].length, 228],
  ]);
  assert.deepEqual(got.map((g) => g.data), [f[0], f[1], f[2].subarray(0, 60), f[3].subarray(0, 81), f[4], f[5].subarray(14), f[0]]);
  assert.equal(src.stats().truncated, 2);
  assert.equal(src.stats().packets, 7);
});

test('pcapng: corrupt or cut-short files reject after every complete packet was delivered', async () => {
  const f = frames(3);
  const head = Buffer.concat([shb(), idb(1), epb(0, f[0]), epb(0, f[1])]);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['cut in a packet', Buffer.concat([head, epb(0, f[2]).subarray(0, 40)]), /truncated packet block/],
    ['cut in a block header', Buffer.concat([head, Buffer.alloc(5)]), /truncated block header \(5 of 8/],
    ['cut in a skipped block', Buffer.concat([head, block(4, Buffer.alloc(100)).subarray(0, 60)]), /truncated block: 112 bytes claimed/],
    ['length not a multiple of 4', Buffer.concat([head, words(true, 4, 18, 0, 0, 0)]), /block length 18 is not a multiple of 4/],
    ['length under 12', Buffer.concat([head, words(true, 4, 8, 0)]), /block length 8/],
    ['undescribed interface', Buffer.concat([head, epb(3, f[2])]), /packet on interface 3, but the section describes 1/],
    ['unknown link type', Buffer.concat([head, idb(147), epb(1, f[2])]), /interface 1: link type 147 is not supported/],
    ['huge packet', Buffer.concat([head, block(6, Buffer.concat([words(true, 0, 0, 0, 300000, 300000), Buffer.alloc(300000)]))]), /packet claims 300000 bytes/],
    ['captured length past the block', Buffer.concat([head, block(6, Buffer.concat([words(true, 0, 0, 0, 200, 200), Buffer.alloc(100)]))]), /captured length 200 overruns/],
    ['bad byte-order magic', Buffer.concat([head, block(0x0a0d0d0a, Buffer.alloc(16))]), /bad byte-order magic/],
    ['version 2', Buffer.concat([head, (() => { const s = shb(); s.writeUInt16LE(2, 12); return s; })()]), /pcapng version 2\.0 is not supported/],
  ];
  for (const [name, bytes, re] of cases) {
    const src = new PcapFileSource(await write(`bad-${cases.findIndex((c) => c[0] === name)}.pcapng`, bytes));
    let n = 0;
    await assert.rejects(src.run(() => void n++), (e: unknown) => e instanceof PcapFormatError && re.test(e.message), name);
    assert.equal(n, 2, name);
  }
  // An interface with an unknown link type but no packets does not stop the replay.
  const { frames: got } = await readAll(await write('unused-if.pcapng', Buffer.concat([shb(), idb(1), idb(147), epb(0, f[0])])));
  assert.equal(got.length, 1);
});

// --- http-mix.pcap rewritten by editcap/mergecap/tcprewrite (test/fixtures/make-link-pcaps.sh) ---

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures');
interface Req { method: string; target: string; body: string }
const EXPECTED: Req[] = JSON.parse(readFileSync(join(FIXTURES, 'http-mix.expected.json'), 'utf8'));
const key = (r: Req) => `${r.method} ${r.target} ${r.body}`;

/** Capture → decode → reassembly → HTTP over a file, as the daemon wires them. */
async function requestsOf(path: string): Promise<{ requests: string[]; dropped: number; anomalies: number; links: Set<number | undefined> }> {
  const requests: string[] = [];
  let dropped = 0;
  const dec = new Decoder(80);
  const table = new FlowTable({ ...DEFAULT_TABLE_OPTIONS, port: 80 }, (_, midstream) =>
    new HttpRequestParser({ onRequest: (r) => requests.push(key({ ...r, body: r.body.toString('latin1') })), onDrop: (_r, n) => (dropped += n) }, undefined, { midstream }),
  );
  const links = new Set<number | undefined>();
  await new PcapFileSource(path).run((buf, off, cap, wire, link) => {
    links.add(link);
    const p = dec.decode(buf, off, cap, wire, link);
    if (p) table.onPacket(p, 0);
  });
  dec.closeAll();
  table.closeAll(0);
  return { requests: requests.sort(), dropped, anomalies: dec.counters.anomalies.reduce((a, b) => a + b, 0), links };
}

test('pcap/pcapng: http-mix in every format and link type yields exactly the expected requests', async () => {
  const want = EXPECTED.map(key).sort();
  const base = await requestsOf(join(FIXTURES, 'http-mix.pcap'));
  assert.deepEqual(base.requests, want);
  const cases: Array<[string, number[]]> = [
    ['http-mix.pcapng', [1]],
    ['http-mix.be.pcapng', [1]],
    ['http-mix.sections.pcapng', [1, 276]],
    ['http-mix.mixed.pcapng', [1, 276]],
    ['http-mix.raw.pcap', [101]],
    ['http-mix.sll.pcap', [113]],
    ['http-mix.sll2.pcap', [276]],
    ['http-mix.null.pcap', [0]],
    ['http-mix.loop.pcap', [108]],
  ];
  for (const [file, links] of cases) {
    const got = await requestsOf(join(FIXTURES, file));
    assert.deepEqual(got.requests, want, file);
    assert.equal(got.dropped, base.dropped, file);
    assert.equal(got.anomalies, 0, file);
    assert.deepEqual([...got.links].sort(), links, file);
  }
  // One IP version per file: together they are the whole mix.
  const v4 = await requestsOf(join(FIXTURES, 'http-mix.ipv4.pcap'));
  const v6 = await requestsOf(join(FIXTURES, 'http-mix.ipv6.pcap'));
  assert.ok(v6.requests.length > 0 && v4.requests.length > 0);
  assert.deepEqual([...v4.requests, ...v6.requests].sort(), want);
});

test('pcap: DLT_RAW as 12 or 14, and NULL from a big-endian host, read like their usual forms', async () => {
  const want = EXPECTED.map(key).sort();
  const raw = readFileSync(join(FIXTURES, 'http-mix.raw.pcap'));
  for (const dlt of [12, 14]) {
    const b = Buffer.from(raw);
    b.writeUInt32LE(dlt, 20);
    assert.deepEqual((await requestsOf(await write(`raw-${dlt}.pcap`, b))).requests, want, `DLT ${dlt}`);
  }
  // A big-endian host writes the file and the 4-byte family in its own order.
  const be = toBigEndian(readFileSync(join(FIXTURES, 'http-mix.null.pcap')));
  for (let o = 24; o < be.length; o += 16 + be.readUInt32BE(o + 8)) be.writeUInt32BE(be.readUInt32LE(o + 16), o + 16);
  const got = await requestsOf(await write('null-be.pcap', be));
  assert.deepEqual(got.requests, want);
  assert.equal(got.anomalies, 0);
});

test('daemon: --pcap on pcapng files replays exactly the expected requests', async () => {
  const got: string[] = [];
  const srv = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      got.push(key({ method: req.method!, target: req.url!, body: Buffer.concat(parts).toString('latin1') }));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
  try {
    for (const file of ['http-mix.mixed.pcapng', 'http-mix.sections.pcapng']) {
      got.length = 0;
      const cfg: Config = { ...DEFAULTS, destinations: [url], pcap: join(FIXTURES, file), percentageByHeader: undefined, markHeader: undefined, metricsPort: 0, logLevel: 'silent' };
      const d = await startDaemon(cfg, pino({ level: 'silent' }));
      assert.equal(await d.done, 0, file);
      assert.deepEqual(got.sort(), EXPECTED.map(key).sort(), file);
      assert.equal(await d.metrics.total('mirror_replay_requests_dropped_total'), 0, file);
      assert.equal(await d.metrics.total('mirror_replay_decode_anomalies_total'), 0, file);
    }
  } finally {
    srv.close();
  }
});
