/** One HTTP/1.x request as production received it, decoded from the client-to-server stream. */
export interface HttpRequest {
  /** Exactly as on the wire, e.g. "GET". */
  method: string;
  /**
   * The request-target as on the wire, except that an absolute-form http(s) target is given in
   * origin form (`GET http://h/p?q` → `/p?q`; `OPTIONS http://h` → `*`), as a server would forward it; see `authority`.
   */
  target: string;
  /**
   * The authority (`host[:port]`) of an absolute-form target, which production used instead of
   * the Host field (RFC 9112 §3.2.2). Undefined for other forms. The Host field is kept as sent.
   */
  authority?: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion: number;
  /**
   * Header fields in wire order, flat: [name0, value0, name1, value1, ...]. Names keep their case,
   * values are latin1 strings with surrounding OWS removed, duplicates are kept.
   */
  headers: string[];
  /** The body bytes after removing chunked framing (empty Buffer if none). */
  body: Buffer;
  /** True if the body arrived chunked (the replay sends it with Content-Length instead). */
  chunked: boolean;
  /** Trailer fields of a chunked body, flat like `headers` (usually empty). */
  trailers: string[];
  /**
   * Set when the request came over HTTP/2 (src/http2/). Then `method` is :method, `target` :path,
   * `authority` :authority (undefined when not sent), `headers` the regular fields in wire order
   * (lower-case names, as HTTP/2 requires), `trailers` the trailing HEADERS block (gRPC sends none,
   * its answers do), `minorVersion` 1 and `chunked` false.
   */
  h2?: H2RequestInfo;
}

/** What an HTTP/2 request has that the HTTP/1.x fields cannot say. */
export interface H2RequestInfo {
  /** :scheme as sent ("http" for h2c). */
  scheme: string;
  /** The client-initiated (odd) stream it came on. */
  streamId: number;
}

/** Why a request (or a run of stream bytes) could not be turned into a faithful request. */
export const HTTP_DROP_REASONS = [
  /** Bytes before the first recognisable request line (midstream pickup or after a resync). */
  'http_midstream_skipped',
  /** Request line or header block that does not parse under RFC 9112. */
  'http_malformed',
  /** Request line longer than the limit. */
  'http_line_too_long',
  /** Header section larger than the limit or too many fields. */
  'http_headers_too_large',
  /** Body larger than the limit. */
  'http_body_too_large',
  /** Framing we refuse to guess: CL+TE, differing CLs, TE not ending in chunked, bad chunk size. */
  'http_ambiguous_framing',
  /** Connection ended (FIN/RST/idle expiry) before the request was complete. */
  'http_incomplete',
  /** A hole in the TCP stream fell inside this request: the mirror lost segments (hole timeout). */
  'stream_gap',
  /** As stream_gap, but the capture ring dropped frames (kernel drops) while the hole was open: the adapter fell behind. */
  'stream_gap_kernel_drop',
  /** Bytes of this request were cut off by the capture (frame longer than snaplen/MTU). */
  'stream_truncated',
  /** The connection held more out-of-order bytes than --max-flow-buffer-bytes: its oldest hole was given up. */
  'stream_flow_cap',
  /** All connections held more than --memcap-bytes: the biggest holders gave up their holes. */
  'stream_memcap',
  /** Two copies of the same TCP bytes differed: which one the server kept is unknown. */
  'stream_overlap_conflict',
  /**
   * CONNECT or Upgrade (not replayed), and what follows it on the connection when the server switched
   * protocols: answered 2xx/101 when the capture carries its side, assumed when it does not.
   */
  'http_upgrade',
  /**
   * The HTTP/2 preface shape (`PRI *`) that is not a valid HTTP/2 start (another version, or not
   * followed by a SETTINGS frame), and everything after it on the connection. A valid preface
   * starts HTTP/2 (src/http2/).
   */
  'http2_preface',
  /** An HTTP/2 connection picked up after its start: its header compression state is unknown, nothing of it is replayed. One per request its frames show (streams in flight at the pickup, and opened after it). */
  'http2_midstream',
  /** An HPACK decoding error (or a header block too large to hold): the connection's header state is lost, this and every later request of it are counted here. */
  'http2_hpack_error',
  /** A frame that breaks RFC 9113 (bad size, stream, padding, CONTINUATION order): framing is lost, the open requests and the rest of the connection are counted here. */
  'http2_protocol_error',
  /** The client reset the stream (RST_STREAM) before it ended: the server saw a partial request. */
  'http2_stream_reset',
  /** The connection ended (FIN, RST, idle expiry) with the stream still open. */
  'http2_incomplete',
  /** More concurrent streams, or more buffered body bytes across streams, than one connection may hold: the newest (or biggest) stream is dropped. */
  'http2_stream_limit',
  /**
   * The connection is TLS (its first bytes are a TLS record, see tls.ts): one per connection, and
   * every later byte of it. The port carries encrypted traffic; mirror the plaintext hop instead.
   */
  'tls',
  /**
   * Requests (and bytes) after a request refused for its head or framing on the same connection: its
   * framing is unknown from there, and a server closes such a connection, so nothing after it is replayed.
   */
  'http_after_refused',
  /** Requests (and bytes) after the last request of a connection: `Connection: close`, or HTTP/1.0 without keep-alive (RFC 9112 §9.3, §9.6). */
  'http_after_close',
  /** Expect: 100-continue and no body byte within the hole timeout (the server likely refused). */
  'http_expect_timeout',
] as const;
export type HttpDropReason = (typeof HTTP_DROP_REASONS)[number];

export interface HttpParserLimits {
  maxRequestLineBytes: number;
  maxHeaderBytes: number;
  maxHeaderCount: number;
  maxBodyBytes: number;
}

export const DEFAULT_HTTP_LIMITS: HttpParserLimits = {
  maxRequestLineBytes: 64 * 1024,
  maxHeaderBytes: 256 * 1024,
  maxHeaderCount: 500,
  maxBodyBytes: 64 * 1024 * 1024,
};

export interface HttpParserEvents {
  /** A complete request. */
  onRequest(req: HttpRequest): void;
  /**
   * A request, or `skippedBytes` of stream, that will not be replayed. `requests` is how many
   * requests were lost (0 when only non-request bytes were skipped, e.g. midstream pickup).
   */
  onDrop(reason: HttpDropReason, requests: number, skippedBytes: number): void;
  /**
   * Optional: a complete request asking to upgrade to h2c (`Upgrade: h2c`, HTTP2-Settings; RFC 7540
   * §3.2) is handed over with the rest of the current push, `rest[off..off+len)` (valid only during
   * the call), and the parser reads nothing more: the caller follows the connection. Without it,
   * such a request is http_upgrade like any other.
   */
  onH2cUpgrade?(req: HttpRequest, rest: Uint8Array, off: number, len: number): void;
}
