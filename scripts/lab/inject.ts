/**
 * Sends hand-made mirrored traffic into the lab adapter, as AWS Traffic Mirroring would: each
 * frame of a pcap file goes as one UDP datagram to the adapter's VXLAN port with an 8-byte VXLAN
 * header (flags 0x08, the VNI) in front. Run inside the production namespace, whose eth1 reaches
 * the adapter without passing the mirrored eth0.
 *
 *   node inject.js --pcap FILE [--to 10.213.2.2:4789] [--vni 1]
 *
 * `injectFrames(lab, frames)` writes the pcap and runs this in the lab's production namespace.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from './harness.js';

export const ADAPTER_VXLAN = '10.213.2.2:4789';

/** A classic little-endian pcap file (Ethernet) holding `frames`, each complete. */
export function writePcap(file: string, frames: Buffer[]): void {
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(262144, 16);
  gh.writeUInt32LE(1, 20);
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, gh);
    for (const f of frames) {
      const rh = Buffer.alloc(16);
      rh.writeUInt32LE(f.length, 8);
      rh.writeUInt32LE(f.length, 12);
      fs.writeSync(fd, rh);
      fs.writeSync(fd, f);
    }
  } finally {
    fs.closeSync(fd);
  }
}

function readPcap(file: string): Buffer[] {
  const b = fs.readFileSync(file);
  if (b.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error(`${file}: not a little-endian classic pcap`);
  const out: Buffer[] = [];
  for (let o = 24; o + 16 <= b.length; ) {
    const cap = b.readUInt32LE(o + 8);
    out.push(b.subarray(o + 16, o + 16 + cap));
    o += 16 + cap;
  }
  return out;
}

/** One VXLAN datagram per frame, in order; each send waits for the previous (no socket overrun). */
export async function sendVxlan(frames: Buffer[], to = ADAPTER_VXLAN, vni = 1): Promise<number> {
  const i = to.lastIndexOf(':');
  const host = to.slice(0, i);
  const port = Number(to.slice(i + 1));
  const sock = dgram.createSocket({ type: 'udp4', sendBufferSize: 4 * 1024 * 1024 });
  await new Promise<void>((r) => sock.bind(0, r));
  const hdr = Buffer.alloc(8);
  hdr[0] = 0x08;
  hdr.writeUIntBE(vni, 4, 3);
  let sent = 0;
  try {
    for (const f of frames) {
      await new Promise<void>((resolve, reject) => sock.send([hdr, f], port, host, (e) => (e ? reject(e) : resolve())));
      sent++;
      // Let the adapter keep up: a short pause every few hundred datagrams.
      if (sent % 256 === 0) await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    sock.close();
  }
  return sent;
}

/** Runs this script in the lab's production namespace to send `frames`; resolves with the count. */
export async function injectFrames(lab: Lab, frames: Buffer[], name = 'inject'): Promise<number> {
  const file = path.join(lab.dir, `${name}-${Date.now()}.pcap`);
  writePcap(file, frames);
  const script = fileURLToPath(import.meta.url);
  const r = lab.run('prod', process.execPath, [script, '--pcap', file, '--to', ADAPTER_VXLAN], 300_000);
  fs.rmSync(file, { force: true });
  if (r.status !== 0) throw new Error(`inject failed (${r.status}): ${r.stderr}`);
  return Number(r.stdout.trim());
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  const get = (k: string, d?: string) => {
    const i = args.indexOf(k);
    return i >= 0 ? args[i + 1] : d;
  };
  const file = get('--pcap');
  if (!file) {
    process.stderr.write('usage: inject --pcap FILE [--to HOST:PORT] [--vni N]\n');
    process.exit(2);
  }
  sendVxlan(readPcap(file), get('--to', ADAPTER_VXLAN), Number(get('--vni', '1'))).then(
    (n) => process.stdout.write(`${n}\n`),
    (e: Error) => {
      process.stderr.write(`${e.message}\n`);
      process.exit(1);
    },
  );
}
