// @vitest-environment node
import { describe, expect, it } from 'vitest';
import { decodeMultiline, encodeMultiline, MultilineDecoder } from '#lib/pop3/multiline';

const NEXT_RESPONSE = Buffer.from('+OK next\r\n');

/** Messages whose wire form exercises stuffing, the terminator and 8-bit bytes. */
const SAMPLES: Record<string, Buffer> = {
  empty: Buffer.alloc(0),
  plain: Buffer.from('Subject: hi\r\n\r\nHello\r\n'),
  'first body line is a dot': Buffer.from('.\r\nafter\r\n'),
  'line that is just two dots': Buffer.from('Subject: x\r\n\r\n..\r\n'),
  'dot lines everywhere': Buffer.from('.\r\n..\r\n...\r\n.x\r\nend.\r\n.\r\n'),
  'CR and dots that are not a terminator': Buffer.from('a\r\n.\rb\r\n.\r\r\n\r\r\n.\r\n'),
  '8-bit and escapes': Buffer.concat([
    Buffer.from('Subject: caf'),
    Buffer.from([
      0xe9, 0x0d, 0x0a, 0x1b, 0x24, 0x42, 0x30, 0x21, 0x1b, 0x28, 0x42, 0x0d, 0x0a, 0xff, 0x00, 0x0d, 0x0a,
    ]),
  ]),
};

function decodeInPieces(wire: Buffer, cuts: number[]): { body: Buffer; rest: Buffer } | undefined {
  const chunks: Buffer[] = [];
  let start = 0;
  for (const cut of [...cuts, wire.length]) {
    chunks.push(wire.subarray(start, cut));
    start = cut;
  }
  return decodeMultiline(chunks);
}

describe('the multi-line response decoder', () => {
  it('returns exactly the message bytes for every sample when read in one chunk', () => {
    for (const [name, message] of Object.entries(SAMPLES)) {
      // Prepare
      const wire = Buffer.concat([encodeMultiline(message), NEXT_RESPONSE]);

      // Act
      const result = decodeInPieces(wire, []);

      // Assess
      expect(result?.body.equals(message), name).toBe(true);
      expect(result?.rest.equals(NEXT_RESPONSE), name).toBe(true);
    }
  });

  it('finds the terminator and the stuffing wherever the stream is cut in two', () => {
    for (const [name, message] of Object.entries(SAMPLES)) {
      // Prepare
      const wire = Buffer.concat([encodeMultiline(message), NEXT_RESPONSE]);

      for (let cut = 0; cut <= wire.length; cut++) {
        // Act
        const result = decodeInPieces(wire, [cut]);

        // Assess
        expect(result?.body.equals(message), `${name} cut at ${cut}`).toBe(true);
        expect(result?.rest.equals(NEXT_RESPONSE), `${name} cut at ${cut}`).toBe(true);
      }
    }
  });

  it('finds the terminator wherever the stream is cut in three', () => {
    // Prepare
    const message = SAMPLES['dot lines everywhere']!;
    const wire = Buffer.concat([encodeMultiline(message), NEXT_RESPONSE]);

    for (let first = 0; first <= wire.length; first++) {
      for (let second = first; second <= wire.length; second++) {
        // Act
        const result = decodeInPieces(wire, [first, second]);

        // Assess
        expect(result?.body.equals(message), `cuts ${first},${second}`).toBe(true);
        expect(result?.rest.equals(NEXT_RESPONSE)).toBe(true);
      }
    }
  });

  it('gives the same bytes when fed one byte at a time', () => {
    for (const [name, message] of Object.entries(SAMPLES)) {
      // Prepare
      const wire = Buffer.concat([encodeMultiline(message), NEXT_RESPONSE]);

      // Act
      const result = decodeInPieces(
        wire,
        Array.from({ length: wire.length - 1 }, (_, i) => i + 1),
      );

      // Assess
      expect(result?.body.equals(message), name).toBe(true);
      expect(result?.rest.equals(NEXT_RESPONSE), name).toBe(true);
    }
  });

  it('un-stuffs a leading dot as RFC 1939 says and stops at the first lone dot line', () => {
    // Prepare
    const wire = Buffer.from('..\r\n...\r\n.x\r\n.\r\nnot part of it\r\n');

    // Act
    const result = decodeMultiline([wire]);

    // Assess
    expect(result?.body.toString('latin1')).toBe('.\r\n..\r\nx\r\n');
    expect(result?.rest.toString('latin1')).toBe('not part of it\r\n');
  });

  it('reports an unfinished response as not done and refuses data after the end', () => {
    // Prepare
    const decoder = new MultilineDecoder();

    // Act
    const partial = decoder.push(Buffer.from('line\r\n.'));
    const end = decoder.push(Buffer.from('\r\n'));

    // Assess
    expect(partial.done).toBe(false);
    expect(end).toMatchObject({ done: true, consumed: 2 });
    expect(() => decoder.push(Buffer.from('x'))).toThrow();
  });

  it('returns slices of the input for a large body instead of copying byte by byte', () => {
    // Prepare
    const message = Buffer.from(`${'x'.repeat(1000)}\r\n`.repeat(100));
    const wire = encodeMultiline(message);

    // Act
    const result = new MultilineDecoder().push(wire);

    // Assess
    expect(result.done).toBe(true);
    expect(result.data).toHaveLength(1);
    expect(Buffer.concat(result.data).equals(message)).toBe(true);
  });
});
