/**
 * pcapng blocks as the recorder writes them (draft-ietf-opsawg-pcapng): a Section Header Block,
 * an Interface Description Block per (interface, link type) with its name and µs timestamps, and
 * an Enhanced Packet Block per frame. Little-endian, no optional blocks: what Wireshark, tshark
 * and tcpreplay read as they are, and what pcapng.ts reads back.
 */
import { PCAPNG_SHB } from './pcapng.js';

const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const IDB = 0x00000001;
const EPB = 0x00000006;
const OPT_END = 0;
const OPT_IF_NAME = 2;
/** Type, length, interface, timestamp (2), captured and original length; and the length again. */
export const EPB_OVERHEAD = 32;
const SHB_LEN = 28;

const pad4 = (n: number): number => (n + 3) & ~3;

/** A section header: version 1.0, section length unknown (-1), no options. */
export function sectionHeader(): Buffer {
  const b = Buffer.alloc(SHB_LEN);
  b.writeUInt32LE(PCAPNG_SHB, 0);
  b.writeUInt32LE(SHB_LEN, 4);
  b.writeUInt32LE(BYTE_ORDER_MAGIC, 8);
  b.writeUInt16LE(1, 12);
  b.writeUInt16LE(0, 14);
  b.writeInt32LE(-1, 16);
  b.writeInt32LE(-1, 20);
  b.writeUInt32LE(SHB_LEN, 24);
  return b;
}

/** An interface description: link type, snap length and if_name; timestamps in the default µs. */
export function interfaceDescription(linkType: number, snapLen: number, name: string): Buffer {
  const nameBytes = Buffer.from(name, 'utf8').subarray(0, 255);
  const opts = 4 + pad4(nameBytes.length) + 4;
  const len = 16 + opts + 4;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(IDB, 0);
  b.writeUInt32LE(len, 4);
  b.writeUInt16LE(linkType, 8);
  b.writeUInt16LE(0, 10);
  b.writeUInt32LE(snapLen, 12);
  b.writeUInt16LE(OPT_IF_NAME, 16);
  b.writeUInt16LE(nameBytes.length, 18);
  nameBytes.copy(b, 20);
  b.writeUInt16LE(OPT_END, 16 + opts - 4); // opt_endofopt, length 0
  b.writeUInt32LE(len, len - 4);
  return b;
}

/** Bytes an Enhanced Packet Block of `capLen` captured bytes takes. */
export function packetBlockLength(capLen: number): number {
  return EPB_OVERHEAD + pad4(capLen);
}

/** Writes an Enhanced Packet Block at out[at..]; returns its length. The caller made room. */
export function writePacketBlock(out: Buffer, at: number, ifId: number, tsUs: number, data: Uint8Array, off: number, capLen: number, wireLen: number): number {
  const len = packetBlockLength(capLen);
  const t = Math.max(0, Math.floor(tsUs));
  const high = Math.floor(t / 4294967296);
  out.writeUInt32LE(EPB, at);
  out.writeUInt32LE(len, at + 4);
  out.writeUInt32LE(ifId, at + 8);
  out.writeUInt32LE(high, at + 12);
  out.writeUInt32LE(t - high * 4294967296, at + 16);
  out.writeUInt32LE(capLen, at + 20);
  out.writeUInt32LE(wireLen, at + 24);
  out.set(data.subarray(off, off + capLen), at + 28);
  out.fill(0, at + 28 + capLen, at + len - 4);
  out.writeUInt32LE(len, at + len - 4);
  return len;
}
