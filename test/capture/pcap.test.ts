import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PcapFileSource } from '../../src/capture/pcap.js';
import { CaptureError, PcapFormatError } from '../../src/errors.js';
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
}

async function readAll(path: string): Promise<{ frames: Got[]; src: PcapFileSource }> {
  const src = new PcapFileSource(path);
  const frames: Got[] = [];
  await src.run((buf, offset, capLen, wireLen) => {
    frames.push({ data: Buffer.from(buf.subarray(offset, offset + capLen)), offset, capLen, wireLen });
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

test('pcap: bad magic, pcapng, other link types, short files', async () => {
  const isFormat = (re: RegExp) => (e: unknown) => e instanceof PcapFormatError && e.code === 'MR_PCAP_FORMAT' && re.test(e.message);
  await assert.rejects(readAll(await write('bad.pcap', Buffer.alloc(100, 0x42))), isFormat(/not a pcap file/));
  const ng = Buffer.alloc(28);
  ng.writeUInt32LE(0x0a0d0d0a, 0);
  ng.writeUInt32LE(0x1a2b3c4d, 8);
  await assert.rejects(readAll(await write('x.pcapng', ng)), isFormat(/pcapng is not supported; convert with `editcap -F pcap`/));
  const raw = pcapFile(frames(1));
  raw.writeUInt32LE(101, 20); // LINKTYPE_RAW
  await assert.rejects(readAll(await write('raw.pcap', raw)), isFormat(/link type 101/));
  await assert.rejects(readAll(await write('short.pcap', pcapFile([]).subarray(0, 10))), isFormat(/too short/));
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
