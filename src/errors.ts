/**
 * The catalogue of failures: every error the daemon makes is a class here with a stable `code`
 * (undici's lib/core/errors.js is the model). Match on `code` (or `instanceof`), never on the
 * message. Metrics label their error counters from ERROR_CODES, so a code added here shows in
 * /metrics (at 0) without a second list to keep in step.
 */
export class MirrorReplayError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MirrorReplayError';
    this.code = code;
  }
}

/** Bad flag, env var or config file value (at start, or in a SIGHUP reload). */
export class ConfigError extends MirrorReplayError {
  static readonly code = 'MR_CONFIG';
  constructor(message: string, options?: { cause?: unknown }) {
    super(ConfigError.code, message, options);
    this.name = 'ConfigError';
  }
}

/** The capture source could not be opened or read (socket, ring, interface, pcap file). */
export class CaptureError extends MirrorReplayError {
  static readonly code = 'MR_CAPTURE';
  readonly errno: number | undefined;
  constructor(message: string, errno?: number, options?: { cause?: unknown }) {
    super(CaptureError.code, message, options);
    this.name = 'CaptureError';
    this.errno = errno;
  }
}

/** A capture file in no format or link type we read, or cut short. */
export class PcapFormatError extends MirrorReplayError {
  static readonly code = 'MR_PCAP_FORMAT';
  constructor(message: string) {
    super(PcapFormatError.code, message);
    this.name = 'PcapFormatError';
  }
}

/** The daemon could not start for a reason that is none of the above (a bug: the log has the stack). */
export class StartError extends MirrorReplayError {
  static readonly code = 'MR_START';
  constructor(message: string, options?: { cause?: unknown }) {
    super(StartError.code, message, options);
    this.name = 'StartError';
  }
}

/** A replayed request got no (complete) answer within --timeout. */
export class ReplayTimeoutError extends MirrorReplayError {
  static readonly code = 'MR_TIMEOUT';
  constructor(message: string) {
    super(ReplayTimeoutError.code, message);
    this.name = 'ReplayTimeoutError';
  }
}

/** A replay ended because the daemon is stopping (its destination drained, its pool destroyed). */
export class ShutdownError extends MirrorReplayError {
  static readonly code = 'MR_SHUTDOWN';
  constructor(message: string) {
    super(ShutdownError.code, message);
    this.name = 'ShutdownError';
  }
}

/** An answer the reply framer refused (malformed, or a head or trailer over its limit). */
export class BadResponseError extends MirrorReplayError {
  static readonly code = 'MR_BAD_RESPONSE';
  constructor(message: string) {
    super(BadResponseError.code, message);
    this.name = 'BadResponseError';
  }
}

/** Not sent: the destination refused connections repeatedly and is in back-off. */
export class DestinationDownError extends MirrorReplayError {
  static readonly code = 'MR_DESTINATION_DOWN';
  constructor(message: string) {
    super(DestinationDownError.code, message);
    this.name = 'DestinationDownError';
  }
}

/** Not sent: a rewrite left a request-target the request line cannot carry (SP, CTL, DEL). */
export class InvalidTargetError extends MirrorReplayError {
  static readonly code = 'MR_INVALID_TARGET';
  constructor(message: string) {
    super(InvalidTargetError.code, message);
    this.name = 'InvalidTargetError';
  }
}

/** The destination reset the HTTP/2 stream (RST_STREAM, or GOAWAY below it) before a complete answer. */
export class StreamResetError extends MirrorReplayError {
  static readonly code = 'MR_STREAM_RESET';
  constructor(message: string) {
    super(StreamResetError.code, message);
    this.name = 'StreamResetError';
  }
}

/** Every class in the catalogue. */
export const ERROR_CLASSES = [ConfigError, CaptureError, PcapFormatError, StartError, ReplayTimeoutError, ShutdownError, BadResponseError, DestinationDownError, InvalidTargetError, StreamResetError] as const;

export type ErrorCode = (typeof ERROR_CLASSES)[number]['code'];

/** Every code of ours, in catalogue order. */
export const ERROR_CODES: readonly ErrorCode[] = ERROR_CLASSES.map((c) => c.code);

/** The codes a replay can fail with that are ours (the rest of the catalogue fails a start, a capture loop or a reload). */
export const REPLAY_ERROR_CODES: readonly ErrorCode[] = [ReplayTimeoutError, ShutdownError, BadResponseError, DestinationDownError, InvalidTargetError, StreamResetError].map((c) => c.code);

/** Codes a replay can fail with that come from Node's sockets and resolver, not from us. */
export const SYSTEM_ERROR_CODES = ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL'] as const;

/** Any other code is counted as this one, so the label set stays bounded. */
export const OTHER_ERROR_CODE = 'other';
