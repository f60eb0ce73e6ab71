/**
 * Byte-level decoder for the body of a POP3 multi-line response (RFC 1939 §3).
 *
 * The body ends at `CRLF.CRLF`; lines that begin with `.` arrive "byte-stuffed" with an extra `.`.
 * The state lives in the decoder, not in the chunk, so the terminator and the stuffing are found
 * wherever the socket (or a TLS record) happens to cut the stream — that cut is exactly what made
 * node-pop3 hang. Output is slices of the input: no decoding, no copying, every byte kept.
 */

const CR = 13;
const LF = 10;
const DOT = 46;
const CR_BUFFER = Buffer.from([CR]);

enum State {
  /** At the first byte of a line (also the very start of the body). */
  LineStart,
  /** Inside a line. */
  Middle,
  /** Just after a CR inside a line. */
  AfterCr,
  /** A line began with `.`, which was dropped (it is either stuffing or the terminator). */
  AfterDot,
  /** Saw `.` CR at the start of a line; the CR is held back until we know it is not the terminator. */
  AfterDotCr,
  Done,
}

export interface DecodeResult {
  /** Body bytes decoded from this chunk, in order (slices of the chunk, plus a held-back CR). */
  readonly data: Buffer[];
  /** How many bytes of the chunk belong to this response; the rest is the next response. */
  readonly consumed: number;
  /** True once the terminating `.CRLF` line has been read. */
  readonly done: boolean;
}

export class MultilineDecoder {
  #state = State.LineStart;

  get done(): boolean {
    return this.#state === State.Done;
  }

  push(chunk: Buffer): DecodeResult {
    if (this.#state === State.Done) throw new Error('MultilineDecoder: push after end of response');
    const data: Buffer[] = [];
    const n = chunk.length;
    let i = 0;
    let segmentStart = 0;
    const flush = (end: number) => {
      if (end > segmentStart) data.push(chunk.subarray(segmentStart, end));
    };

    while (i < n) {
      switch (this.#state) {
        case State.Middle: {
          // Fast path: most bytes are inside lines; jump straight to the next CR.
          const cr = chunk.indexOf(CR, i);
          if (cr < 0) {
            i = n;
          } else {
            i = cr + 1;
            this.#state = State.AfterCr;
          }
          break;
        }
        case State.AfterCr: {
          const byte = chunk[i];
          this.#state = byte === LF ? State.LineStart : byte === CR ? State.AfterCr : State.Middle;
          i++;
          break;
        }
        case State.LineStart: {
          if (chunk[i] === DOT) {
            flush(i);
            segmentStart = i + 1;
            i++;
            this.#state = State.AfterDot;
          } else {
            this.#state = State.Middle; // re-read this byte in Middle (it may be a CR)
          }
          break;
        }
        case State.AfterDot: {
          if (chunk[i] === CR) {
            // Maybe the terminator: keep the CR out of the output until the LF confirms it.
            flush(i);
            segmentStart = i + 1;
            i++;
            this.#state = State.AfterDotCr;
          } else {
            // RFC 1939: a leading `.` not followed by CRLF is stuffing and is removed ("..x" → ".x").
            this.#state = State.Middle;
          }
          break;
        }
        case State.AfterDotCr: {
          if (chunk[i] === LF) {
            this.#state = State.Done;
            return { data, consumed: i + 1, done: true };
          }
          // Not the terminator: the held-back CR is body data after all; re-read this byte after it.
          data.push(CR_BUFFER);
          this.#state = State.AfterCr;
          break;
        }
        default:
          throw new Error('unreachable');
      }
    }
    flush(n);
    return { data, consumed: n, done: false };
  }
}

/** Decodes a complete multi-line body given as chunks (convenience for tests and small responses). */
export function decodeMultiline(chunks: Iterable<Buffer>): { body: Buffer; rest: Buffer } | undefined {
  const decoder = new MultilineDecoder();
  const out: Buffer[] = [];
  const rest: Buffer[] = [];
  for (const chunk of chunks) {
    if (decoder.done) {
      rest.push(chunk);
      continue;
    }
    const result = decoder.push(chunk);
    out.push(...result.data);
    if (result.done) rest.push(chunk.subarray(result.consumed));
  }
  return decoder.done ? { body: Buffer.concat(out), rest: Buffer.concat(rest) } : undefined;
}

/** Byte-stuffs a message and appends the terminator, as a POP3 server sends it. */
export function encodeMultiline(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let lineStart = 0;
  let segmentStart = 0;
  while (lineStart < body.length) {
    if (body[lineStart] === DOT) {
      parts.push(body.subarray(segmentStart, lineStart), Buffer.from('.'));
      segmentStart = lineStart;
    }
    const lf = body.indexOf('\r\n', lineStart);
    if (lf < 0) break;
    lineStart = lf + 2;
  }
  parts.push(body.subarray(segmentStart));
  const endsWithCrlf = body.length >= 2 && body[body.length - 2] === CR && body[body.length - 1] === LF;
  parts.push(Buffer.from(endsWithCrlf || body.length === 0 ? '.\r\n' : '\r\n.\r\n'));
  return Buffer.concat(parts);
}
