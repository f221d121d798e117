/**
 * A one-shot plain-TCP connection on Node's own TCP handle (the tcp_wrap binding that net.Socket
 * wraps), for HTTP/1.0 replay: a connection per request, one write, reads until the answer ends.
 *
 * Why: for connection churn net.Socket is most of the client's cost. The churn benchmark
 * (test/bench/churn.ts) measures a minimal net.connect loop at about twice the CPU per connection
 * of the same loop on the handle; the difference is net.Socket's stream machinery (Duplex state,
 * events, nextTicks, destroy), which a connection that carries one write and one answer does not
 * use. The system calls are the same (libuv makes them either way).
 *
 * The handle is reached through process.binding('tcp_wrap'), which Node.js keeps for compatibility
 * (DEP0111, a documentation-only deprecation). When it is missing or not as expected,
 * rawTcp() returns null and the client uses net.Socket: nothing depends on this file but speed.
 * It offers the subset of net.Socket the client uses for a one-shot request, and reports
 * through RawEvents what net.Socket reports through 'connect', onread, 'end'/'close' and 'error':
 * always from the event loop, never from inside the caller's call.
 */
import { getSystemErrorName } from 'node:util';

/** What the connection is told; the same calls the net.Socket listeners make. */
export interface RawEvents {
  onConnect(): void;
  /** Bytes d[0..n); the view is valid during the call only. */
  onData(d: Buffer, n: number): void;
  /** The peer ended the stream (EOF). */
  onClose(): void;
  fail(err: Error & { code?: string }): void;
}

interface Handle {
  connect(req: object, host: string, port: number): number;
  connect6(req: object, host: string, port: number): number;
  setNoDelay(on: boolean): number;
  useUserBuffer(b: Uint8Array): void;
  readStart(): number;
  writeLatin1String(req: object, s: string): number;
  writeBuffer(req: object, b: Uint8Array): number;
  close(cb?: () => void): void;
  onread: (ab: unknown) => void;
  [CONN]?: RawSocket;
}

interface Binding {
  TCP: new (type: number) => Handle;
  TCPConnectWrap: new () => { oncomplete: (status: number, handle: Handle) => void };
  WriteWrap: new () => { handle: Handle; oncomplete: (this: { handle: Handle }, status: number) => void; async: boolean; buffer?: unknown };
  socketType: number;
  state: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

const CONN = Symbol('connection');
const UV_EOF = -4095;

let binding: Binding | null | undefined;

/** The handle binding, or null when this Node.js does not offer it as expected. */
export function rawTcp(): Binding | null {
  if (binding !== undefined) return binding;
  binding = null;
  try {
    const get = (process as unknown as { binding: (n: string) => Record<string, unknown> }).binding;
    const tcp = get('tcp_wrap') as { TCP?: unknown; TCPConnectWrap?: unknown; constants?: { SOCKET?: number } };
    const sw = get('stream_wrap') as { WriteWrap?: unknown; streamBaseState?: Int32Array; kReadBytesOrError?: number; kLastWriteWasAsync?: number };
    const proto = (tcp.TCP as { prototype?: Record<string, unknown> } | undefined)?.prototype;
    const methods = ['connect', 'connect6', 'setNoDelay', 'useUserBuffer', 'readStart', 'writeLatin1String', 'writeBuffer', 'close'];
    if (!proto || !methods.every((m) => typeof proto[m] === 'function')) return null;
    if (typeof tcp.TCPConnectWrap !== 'function' || typeof sw.WriteWrap !== 'function' || typeof tcp.constants?.SOCKET !== 'number') return null;
    if (!(sw.streamBaseState instanceof Int32Array) || typeof sw.kReadBytesOrError !== 'number' || typeof sw.kLastWriteWasAsync !== 'number') return null;
    binding = {
      TCP: tcp.TCP as Binding['TCP'],
      TCPConnectWrap: tcp.TCPConnectWrap as Binding['TCPConnectWrap'],
      WriteWrap: sw.WriteWrap as Binding['WriteWrap'],
      socketType: tcp.constants.SOCKET,
      state: sw.streamBaseState,
      kReadBytesOrError: sw.kReadBytesOrError,
      kLastWriteWasAsync: sw.kLastWriteWasAsync,
    };
  } catch {
    binding = null;
  }
  return binding;
}

function uvError(status: number, syscall: string, where = ''): Error & { code: string; errno: number; syscall: string } {
  let code = 'UNKNOWN';
  try {
    code = getSystemErrorName(status);
  } catch {
    // not a system error number: keep UNKNOWN
  }
  return Object.assign(new Error(`${syscall} ${code}${where}`), { code, errno: status, syscall });
}

/** One connection to an IP address (v4 or v6 literal): connect, one write, reads, close. */
export class RawSocket {
  /** Bytes accepted but not yet in the kernel (net.Socket's name): 0, or the one write while it is. */
  writableLength = 0;
  private readonly h: Handle;
  private connected = false;
  private closed = false;
  /** A write made before the connection was established. */
  private pending: string | Buffer | null = null;
  /** The write request libuv still holds (kept reachable until it completes). */
  private writing: object | null = null;

  /** " host:port", for the connect error's message (as net.Socket words it). */
  private readonly where: string;

  constructor(private readonly b: Binding, host: string, port: number, v6: boolean, private readonly readBuf: Buffer, private readonly ev: RawEvents) {
    this.where = ` ${host}:${port}`;
    this.h = new b.TCP(b.socketType);
    this.h[CONN] = this;
    const req = new b.TCPConnectWrap();
    req.oncomplete = afterConnect;
    const err = v6 ? this.h.connect6(req, host, port) : this.h.connect(req, host, port);
    if (err) process.nextTick(() => this.failed(uvError(err, 'connect', this.where)));
  }

  /** @internal The connect request completed with `status`. */
  connectDone(status: number): void {
    if (this.closed) return;
    if (status < 0) return this.failed(uvError(status, 'connect', this.where));
    this.connected = true;
    const h = this.h;
    h.setNoDelay(true);
    h.useUserBuffer(this.readBuf);
    h.onread = onRead;
    const err = h.readStart();
    if (err) return this.failed(uvError(err, 'read'));
    this.ev.onConnect();
    const p = this.pending;
    this.pending = null;
    if (p !== null && !this.closed) this.writeNow(p);
  }

  /** Writes `data` (a string as latin1) once connected; a failure is reported, as by net.Socket. */
  write(data: string | Buffer, _latin1?: 'latin1'): boolean {
    if (this.closed) return false;
    if (!this.connected) {
      // One write per one-shot connection: a second before connect is joined to the first.
      this.pending = this.pending === null ? data : Buffer.concat([toBuf(this.pending), toBuf(data)]);
      return true;
    }
    process.nextTick(() => this.writeNow(data));
    return true;
  }

  private writeNow(data: string | Buffer): void {
    if (this.closed) return;
    const w = new this.b.WriteWrap();
    w.handle = this.h;
    w.oncomplete = afterWrite;
    w.async = false;
    const err = typeof data === 'string' ? this.h.writeLatin1String(w, data) : this.h.writeBuffer(w, data);
    if (err) return this.failed(uvError(err, 'write'));
    if (this.b.state[this.b.kLastWriteWasAsync]) {
      // Not all of it reached the kernel: libuv keeps the request; the Buffer must stay alive with it.
      w.async = true;
      w.buffer = data;
      this.writing = w;
      this.writableLength = data.length;
    }
  }

  /** @internal An asynchronous write completed. */
  writeDone(status: number): void {
    this.writableLength = 0;
    this.writing = null;
    if (status < 0 && !this.closed) this.failed(uvError(status, 'write'));
  }

  /** @internal A read: n bytes in the shared buffer, or EOF / an error (n < 0). */
  read(n: number): void {
    if (this.closed) return;
    if (n > 0) this.ev.onData(this.readBuf, n);
    else if (n === UV_EOF) this.ev.onClose();
    else if (n < 0) this.failed(uvError(n, 'read'));
  }

  private failed(err: Error & { code?: string }): void {
    if (this.closed) return;
    this.ev.fail(err);
  }

  /** Closes the handle; nothing is reported after this. */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = null;
    // (onread stays: the handle accepts only a function there, and `closed` silences it.)
    this.h.close();
  }

  // The parts of net.Socket the client calls on pooled connections only.
  cork(): void {}
  uncork(): void {}
  setKeepAlive(_on?: boolean, _delayMs?: number): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

function toBuf(d: string | Buffer): Buffer {
  return typeof d === 'string' ? Buffer.from(d, 'latin1') : d;
}

// Callbacks shared by every handle and request (no closures per connection).
function afterConnect(status: number, handle: Handle): void {
  handle[CONN]?.connectDone(status);
}
function afterWrite(this: { handle: Handle }, status: number): void {
  this.handle[CONN]?.writeDone(status);
}
function onRead(this: Handle): void {
  this[CONN]?.read(binding!.state[binding!.kReadBytesOrError]);
}
