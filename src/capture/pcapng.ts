/**
 * pcapng (draft-ietf-opsawg-pcapng): sections in either byte order, each with its own interfaces
 * (link type, snap length); packets from Enhanced, Simple and obsolete Packet Blocks. Every other
 * block (name resolution, statistics, decryption secrets, custom) is skipped by its length,
 * without buffering it. Timestamps are read in each interface's if_tsresol and handed on in µs.
 *
 * Same safety rules as classic pcap: a packet over MAX_RECORD, a block length that is not a
 * multiple of 4 or under 12, or a last block cut short is a PcapFormatError after every complete
 * packet before it was delivered. A packet on an interface whose link type decode does not know
 * is one too, raised at that packet, so that an unused interface does not stop a replay.
 */
import { PcapFormatError } from '../errors.js';
import { checkLinkType, MAX_RECORD, type ChunkReader, type Pace } from './file-reader.js';
import type { FrameHandler, LinkType } from './source.js';

/** The Section Header Block type: a palindrome, so it reads the same in either byte order. */
export const PCAPNG_SHB = 0x0a0d0d0a;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const IDB = 0x00000001;
const OBSOLETE_PB = 0x00000002;
const SPB = 0x00000003;
const EPB = 0x00000006;
/** Block type and length ahead of the body, length again after it. */
const BLOCK_OVERHEAD = 12;
const SHB_MIN = 28;
const IDB_MIN = 20;
const SPB_MIN = 16;
/** EPB and the obsolete PB alike: 20 bytes of interface, timestamp and lengths before the data. */
const PB_HEADER = 28;
const PB_MIN = 32;
/** A packet block is buffered whole; room for its options beyond the largest packet. */
const MAX_PACKET_BLOCK = MAX_RECORD + PB_MIN + 65536;

interface Interface {
  linkType: number;
  /** 0: no limit. */
  snapLen: number;
  /** Checked once, at its first packet. */
  checked: boolean;
  /** Timestamp units per µs (if_tsresol; default 1). */
  unitsPerUs: number;
}

/** Largest interface description whose options we read (if_tsresol); larger ones keep the default. */
const IDB_OPTIONS_MAX = 65536;
const OPT_END = 0;
const OPT_IF_TSRESOL = 9;

export async function readPcapng(r: ChunkReader, name: string, deliver: FrameHandler, stopping: () => boolean, pace: Pace | null = null): Promise<void> {
  const buf = r.buf;
  let [le, interfaces] = [true, [] as Interface[]];
  const u32 = (o: number): number => (le ? buf.readUInt32LE(r.start + o) : buf.readUInt32BE(r.start + o));
  const u16 = (o: number): number => (le ? buf.readUInt16LE(r.start + o) : buf.readUInt16BE(r.start + o));
  let blockAt = 0; // for messages
  const fail = (what: string): never => throwFormat(`${name}: pcapng block at offset ${blockAt}: ${what}`);
  const need = async (n: number, what: string): Promise<void> => {
    if (!(await r.fill(n))) fail(`truncated ${what} (${n} bytes needed, ${r.available} present)`);
  };
  const linkOf = (id: number): LinkType => {
    const i = interfaces[id] ?? fail(`packet on interface ${id}, but the section describes ${interfaces.length}`);
    if (!i.checked) {
      checkLinkType(name, i.linkType, `pcapng interface ${id}: `);
      i.checked = true;
    }
    return i.linkType;
  };

  while (!stopping()) {
    blockAt = r.offset;
    if (!(await r.fill(8))) {
      if (r.available === 0) return;
      fail(`truncated block header (${r.available} of 8 bytes)`);
    }
    if (buf.readUInt32LE(r.start) === PCAPNG_SHB) {
      await need(12, 'section header');
      const bom = buf.readUInt32LE(r.start + 8);
      le = littleEndian(bom) ?? fail(`bad byte-order magic 0x${bom.toString(16)}`);
      interfaces = [];
    }
    const [type, len] = [u32(0), u32(4)];
    if (len < BLOCK_OVERHEAD || len % 4 !== 0) fail(`block length ${len} is not a multiple of 4 of at least 12; file is corrupt`);
    switch (type) {
      case PCAPNG_SHB:
        if (len < SHB_MIN) fail(`section header of ${len} bytes`);
        await need(16, 'section header');
        if (u16(12) !== 1) fail(`pcapng version ${u16(12)}.${u16(14)} is not supported (1.x is)`);
        break;
      case IDB:
        if (len < IDB_MIN) fail(`interface description of ${len} bytes`);
        await need(Math.min(len, IDB_OPTIONS_MAX), 'interface description');
        interfaces.push({ linkType: u16(8), snapLen: u32(12), checked: false, unitsPerUs: tsUnitsPerUs(buf, r.start, Math.min(len, IDB_OPTIONS_MAX), le) });
        break;
      case EPB:
      case OBSOLETE_PB: {
        if (len < PB_MIN) fail(`packet block of ${len} bytes`);
        if (len > MAX_PACKET_BLOCK) fail(`packet block claims ${len} bytes (limit ${MAX_PACKET_BLOCK}); file is corrupt`);
        await need(len, 'packet block');
        const id = type === EPB ? u32(8) : u16(8);
        const [capLen, linkType, ts] = [u32(20), linkOf(id), timestamp(u32(12), u32(16), interfaces[id])];
        if (capLen > len - PB_MIN) fail(`captured length ${capLen} overruns its ${len}-byte block; file is corrupt`);
        if (capLen > MAX_RECORD) fail(`packet claims ${capLen} bytes (limit ${MAX_RECORD}); file is corrupt`);
        const wait = pace?.(ts);
        if (wait) await wait;
        deliver(buf, r.start + PB_HEADER, capLen, u32(24), linkType, ts);
        r.consume(len);
        continue;
      }
      case SPB: {
        if (len < SPB_MIN) fail(`simple packet block of ${len} bytes`);
        if (len > MAX_PACKET_BLOCK) fail(`packet block claims ${len} bytes (limit ${MAX_PACKET_BLOCK}); file is corrupt`);
        await need(len, 'simple packet block');
        const linkType = linkOf(0);
        const wireLen = u32(8);
        // No captured length of its own: the smaller of the packet, the snap length and the block.
        const capLen = Math.min(wireLen, len - SPB_MIN, interfaces[0].snapLen || Infinity);
        if (capLen > MAX_RECORD) fail(`packet claims ${capLen} bytes (limit ${MAX_RECORD}); file is corrupt`);
        const wait = pace?.(undefined);
        if (wait) await wait;
        deliver(buf, r.start + 12, capLen, wireLen, linkType);
        r.consume(len);
        continue;
      }
    }
    // Header fields read; the rest (options, other blocks) is passed over unbuffered.
    if (!(await r.skip(len))) fail(`truncated block: ${len} bytes claimed, the file ends first`);
  }
}

/** A section's byte-order magic read as little-endian: true if the section is, false if big-endian, null if neither. */
function littleEndian(bom: number): boolean | null {
  if (bom === BYTE_ORDER_MAGIC) return true;
  return bom === 0x4d3c2b1a ? false : null;
}

function throwFormat(message: string): never {
  throw new PcapFormatError(message);
}

/** A packet block's timestamp in µs, from its interface's units. */
function timestamp(high: number, low: number, i: Interface): number {
  return (high * 4294967296) / i.unitsPerUs + low / i.unitsPerUs;
}

/** if_tsresol of the interface description at buf[at..at+len): timestamp units per µs. */
function tsUnitsPerUs(buf: Buffer, at: number, len: number, le: boolean): number {
  const end = at + len - 4;
  for (let o = at + 16; o + 4 <= end; ) {
    const code = le ? buf.readUInt16LE(o) : buf.readUInt16BE(o);
    const size = le ? buf.readUInt16LE(o + 2) : buf.readUInt16BE(o + 2);
    if (code === OPT_END) break;
    if (code === OPT_IF_TSRESOL && size >= 1 && o + 5 <= end) {
      const v = buf[o + 4];
      const perSec = v & 0x80 ? 2 ** (v & 0x7f) : 10 ** v;
      return perSec / 1e6;
    }
    o += 4 + ((size + 3) & ~3);
  }
  return 1;
}
