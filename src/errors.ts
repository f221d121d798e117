/**
 * Errors that reach the operator carry a stable `code`; match on it, never on the message.
 */
export class MirrorReplayError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MirrorReplayError';
    this.code = code;
  }
}

/** Bad flag, env var or config file value. */
export class ConfigError extends MirrorReplayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MR_CONFIG', message, options);
    this.name = 'ConfigError';
  }
}

/** The capture source could not be opened or read (socket, ring, interface, pcap file). */
export class CaptureError extends MirrorReplayError {
  readonly errno: number | undefined;
  constructor(message: string, errno?: number, options?: { cause?: unknown }) {
    super('MR_CAPTURE', message, options);
    this.name = 'CaptureError';
    this.errno = errno;
  }
}

/** A pcap file that is not classic pcap with an Ethernet link type, or is cut short. */
export class PcapFormatError extends MirrorReplayError {
  constructor(message: string) {
    super('MR_PCAP_FORMAT', message);
    this.name = 'PcapFormatError';
  }
}
