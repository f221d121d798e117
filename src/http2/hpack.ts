/**
 * HPACK decoder (RFC 7541) for a passive observer: static and dynamic table, dynamic table size
 * updates, integers, string literals with and without Huffman coding.
 *
 * Written here rather than taken from npm: hpack.js (the one standalone decoder) is unmaintained
 * since 2017, and node:http2's decoder (nghttp2) is not reachable from JavaScript. Measured in
 * test/bench/hpack.ts.
 *
 * Why it differs from a server's decoder:
 * - A header block over our limit (`maxDecodedBytes`) is still decoded to its end, without
 *   keeping its fields: its insertions must reach the dynamic table, or every later block of the
 *   connection would decode to the wrong fields. The caller drops the request, not the connection.
 * - The table size an encoder may set is bounded by what its peer advertised in
 *   SETTINGS_HEADER_TABLE_SIZE, which the other direction carries and we may not see; the bound
 *   here is `maxTableSize` (64 KiB by default, far above what clients use), which also bounds memory.
 * - Any error leaves the table in an unknown state: the decoder refuses every later block
 *   (`failed`), and the connection's later requests are only counted.
 *
 * Values are latin1 strings: each byte one char, so a field's bytes are kept exactly.
 */

/** Why a header block could not be decoded. */
export type HpackError =
  | 'hpack_truncated'
  | 'hpack_index'
  | 'hpack_integer'
  | 'hpack_huffman'
  | 'hpack_table_size'
  | 'hpack_size_update_position'
  | 'hpack_failed_before';

/** RFC 7541 Appendix A. */
export const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''],
  ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''],
  ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''],
  ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''],
  ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''], ['transfer-encoding', ''],
  ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];

/**
 * Code lengths of the Huffman code, symbols 0..256 (256 = EOS), RFC 7541 Appendix B. The code is
 * canonical (codes of one length are consecutive in symbol order, shorter codes sort first), so
 * the lengths define it; the RFC's examples in test/http2/hpack.test.ts check the result.
 */
const HUFFMAN_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];
const EOS = 256;
const MAX_CODE_LEN = 30;

/**
 * Canonical decoding tables, built once: for each length L, the first code of that length
 * (`firstCode[L]`), how many codes have it, and where its symbols start in `symbols`.
 */
const firstCode = new Int32Array(MAX_CODE_LEN + 2);
const codeCount = new Int32Array(MAX_CODE_LEN + 2);
const firstIndex = new Int32Array(MAX_CODE_LEN + 2);
const symbols = new Uint16Array(257);
(function buildCanonical() {
  const order = HUFFMAN_LENGTHS.map((_, s) => s).sort((a, b) => HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b);
  order.forEach((s, i) => (symbols[i] = s));
  let code = 0;
  let i = 0;
  for (let len = 1; len <= MAX_CODE_LEN; len++) {
    firstCode[len] = code;
    firstIndex[len] = i;
    while (i < order.length && HUFFMAN_LENGTHS[order[i]] === len) {
      code++;
      i++;
      codeCount[len]++;
    }
    code <<= 1;
  }
})();

/** Bit by bit through the canonical code: strings are short, measured in test/bench/hpack.ts. */
function huffmanDecode(b: Uint8Array, s: number, e: number): string | null {
  let out = '';
  let code = 0;
  let len = 0;
  for (let i = s; i < e; i++) {
    const byte = b[i];
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      len++;
      const k = code - firstCode[len];
      if (k >= 0 && k < codeCount[len]) {
        const sym = symbols[firstIndex[len] + k];
        if (sym === EOS) return null; // §5.2: EOS in a string is an error
        out += String.fromCharCode(sym);
        code = 0;
        len = 0;
      } else if (len >= MAX_CODE_LEN) {
        return null;
      }
    }
  }
  // §5.2: padding is at most 7 bits, all ones (a prefix of EOS).
  if (len > 7 || code !== (1 << len) - 1) return null;
  return out;
}

/** Entry overhead (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32;
export const DEFAULT_TABLE_SIZE = 4096;
/** The largest table size an encoder may set before we call it an error (bounds memory). */
export const DEFAULT_MAX_TABLE_SIZE = 64 * 1024;

export interface HpackOptions {
  /** Largest dynamic table size accepted in a size update. */
  maxTableSize?: number;
  /** The table size before any size update (4096 unless the peer's SETTINGS said otherwise). */
  initialTableSize?: number;
}

/** The fields of one decoded header block: [name0, value0, …], and whether they were all kept. */
export interface DecodedBlock {
  fields: string[];
  /** Sum of name and value lengths plus 32 per field (RFC 9113 §6.5.2's header list size). */
  listSize: number;
  /** The block was over `maxDecodedBytes`: decoded (the table is in step) but its fields not kept. */
  overLimit: boolean;
}

export class HpackDecoder {
  /** Dynamic table, newest first: names and values in a ring. */
  private names: string[] = [];
  private values: string[] = [];
  /** Ring start (newest entry) and count. */
  private head = 0;
  private count = 0;
  private size = 0;
  /** Current maximum size (set by size updates), and the bound for them. */
  private maxSize = DEFAULT_TABLE_SIZE;
  private readonly limit: number;
  /** An error happened: the table's content is unknown. */
  failed: HpackError | null = null;
  /** Position reached by the last integer or string read, and the error of the last string that failed. */
  private pos = 0;
  private err: HpackError = 'hpack_truncated';

  constructor(opts: HpackOptions = {}) {
    this.limit = opts.maxTableSize ?? DEFAULT_MAX_TABLE_SIZE;
    this.maxSize = Math.min(this.limit, opts.initialTableSize ?? DEFAULT_TABLE_SIZE);
  }

  /** Bytes held by the dynamic table (its RFC size, close to its memory). */
  get tableSize(): number {
    return this.size;
  }

  get tableEntries(): number {
    return this.count;
  }

  /**
   * Decode the complete header block b[s..e). Fields beyond `maxDecodedBytes` of header list are
   * not kept (see the file header). Returns the block, or the error (and the decoder is failed).
   */
  decode(b: Uint8Array, s: number, e: number, maxDecodedBytes: number): DecodedBlock | HpackError {
    if (this.failed !== null) return 'hpack_failed_before';
    const r = this.decodeInner(b, s, e, maxDecodedBytes);
    if (typeof r === 'string') this.failed = r;
    return r;
  }

  private decodeInner(b: Uint8Array, s: number, e: number, maxDecoded: number): DecodedBlock | HpackError {
    const out: DecodedBlock = { fields: [], listSize: 0, overLimit: false };
    let p = s;
    let fieldSeen = false;
    while (p < e) {
      const c = b[p];
      if (c & 0x80) {
        // §6.1 indexed field
        const idx = this.integer(b, p, e, 7);
        if (idx < 0) return idx === -1 ? 'hpack_truncated' : 'hpack_integer';
        p = this.pos;
        const err = this.emitIndexed(idx, out, maxDecoded);
        if (err !== null) return err;
        fieldSeen = true;
      } else if ((c & 0xe0) === 0x20) {
        // §6.3 dynamic table size update: only at the start of a block (§4.2)
        if (fieldSeen) return 'hpack_size_update_position';
        const n = this.integer(b, p, e, 5);
        if (n < 0) return n === -1 ? 'hpack_truncated' : 'hpack_integer';
        p = this.pos;
        if (n > this.limit) return 'hpack_table_size';
        this.maxSize = n;
        this.evict(0);
      } else {
        // §6.2 literal: with incremental indexing (01), without (0000), never indexed (0001)
        const indexing = (c & 0xc0) === 0x40;
        const q = this.literal(b, p, e, indexing ? 6 : 4, indexing, out, maxDecoded);
        if (typeof q === 'string') return q;
        p = q;
        fieldSeen = true;
      }
    }
    return out;
  }

  private literal(b: Uint8Array, p: number, e: number, prefix: number, indexing: boolean, out: DecodedBlock, maxDecoded: number): number | HpackError {
    const idx = this.integer(b, p, e, prefix);
    if (idx < 0) return idx === -1 ? 'hpack_truncated' : 'hpack_integer';
    p = this.pos;
    let name: string;
    if (idx === 0) {
      const n = this.string(b, p, e);
      if (n === null) return this.err;
      name = n;
      p = this.pos;
    } else {
      const n = this.nameAt(idx);
      if (n === null) return 'hpack_index';
      name = n;
    }
    const value = this.string(b, p, e);
    if (value === null) return this.err;
    p = this.pos;
    this.emit(name, value, out, maxDecoded);
    if (indexing) this.insert(name, value);
    return p;
  }

  private emitIndexed(idx: number, out: DecodedBlock, maxDecoded: number): HpackError | null {
    if (idx === 0) return 'hpack_index';
    if (idx <= STATIC_TABLE.length) {
      const f = STATIC_TABLE[idx - 1];
      this.emit(f[0], f[1], out, maxDecoded);
      return null;
    }
    const d = idx - STATIC_TABLE.length - 1;
    if (d >= this.count) return 'hpack_index';
    const k = (this.head + d) % this.names.length;
    this.emit(this.names[k], this.values[k], out, maxDecoded);
    return null;
  }

  private nameAt(idx: number): string | null {
    if (idx <= STATIC_TABLE.length) return STATIC_TABLE[idx - 1][0];
    const d = idx - STATIC_TABLE.length - 1;
    if (d >= this.count) return null;
    return this.names[(this.head + d) % this.names.length];
  }

  private emit(name: string, value: string, out: DecodedBlock, maxDecoded: number): void {
    out.listSize += name.length + value.length + ENTRY_OVERHEAD;
    if (out.listSize > maxDecoded) {
      out.overLimit = true;
      out.fields.length = 0;
    }
    if (!out.overLimit) out.fields.push(name, value);
  }

  /** §4.4: add at the front, evicting from the end; an entry bigger than the table empties it. */
  private insert(name: string, value: string): void {
    const sz = name.length + value.length + ENTRY_OVERHEAD;
    if (sz > this.maxSize) {
      this.evict(this.maxSize + 1);
      return;
    }
    this.evict(sz);
    // Entries are at least 32 bytes, so maxSize / 32 + 1 slots always suffice.
    const cap = Math.floor(this.maxSize / ENTRY_OVERHEAD) + 1;
    if (this.names.length < cap) this.grow(cap);
    const n = this.names.length;
    this.head = (this.head - 1 + n) % n;
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.count++;
    this.size += sz;
  }

  /** Evict oldest entries until `room` more bytes fit in maxSize. */
  private evict(room: number): void {
    const n = this.names.length;
    while (this.count > 0 && this.size + room > this.maxSize) {
      const k = (this.head + this.count - 1) % n;
      this.size -= this.names[k].length + this.values[k].length + ENTRY_OVERHEAD;
      this.names[k] = '';
      this.values[k] = '';
      this.count--;
    }
  }

  /** Re-lay the ring into `cap` slots, newest first at 0. */
  private grow(cap: number): void {
    const n = this.names.length;
    const names = new Array<string>(cap).fill('');
    const values = new Array<string>(cap).fill('');
    for (let i = 0; i < this.count; i++) {
      names[i] = this.names[(this.head + i) % n];
      values[i] = this.values[(this.head + i) % n];
    }
    this.names = names;
    this.values = values;
    this.head = 0;
  }

  /**
   * §5.1 integer with an N-bit prefix at b[p]; sets `pos` after it. -1: the block ends inside it;
   * -2: it passes 2^28 (no table or string is that big; also keeps the arithmetic exact).
   */
  private integer(b: Uint8Array, p: number, e: number, prefix: number): number {
    const max = (1 << prefix) - 1;
    let v = b[p] & max;
    p++;
    if (v < max) {
      this.pos = p;
      return v;
    }
    let shift = 0;
    for (;;) {
      if (p >= e) return -1;
      const c = b[p++];
      v += (c & 0x7f) * 2 ** shift;
      if (v > 0x10000000) return -2;
      if ((c & 0x80) === 0) break;
      shift += 7;
    }
    this.pos = p;
    return v;
  }

  /** §5.2 string literal at b[p]; sets `pos` after it. null: the error is in `err`. */
  private string(b: Uint8Array, p: number, e: number): string | null {
    if (p >= e) return this.fail('hpack_truncated');
    const huff = (b[p] & 0x80) !== 0;
    const n = this.integer(b, p, e, 7);
    if (n < 0) return this.fail(n === -1 ? 'hpack_truncated' : 'hpack_integer');
    const s = this.pos;
    if (s + n > e) return this.fail('hpack_truncated');
    this.pos = s + n;
    if (!huff) return Buffer.from(b.buffer, b.byteOffset + s, n).toString('latin1');
    return huffmanDecode(b, s, s + n) ?? this.fail('hpack_huffman');
  }

  private fail(err: HpackError): null {
    this.err = err;
    return null;
  }
}
