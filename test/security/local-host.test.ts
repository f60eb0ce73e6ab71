import { describe, expect, it } from 'vitest';
import { isLoopbackHost } from '#local/http';

describe('the local runner', () => {
  it.each(['127.0.0.1:3000', 'localhost:3000', 'LOCALHOST', '[::1]:3000', '127.0.0.2'])(
    'answers Host %s',
    (host) => {
      // Act
      const allowed = isLoopbackHost(host);
      // Assess
      expect(allowed).toBe(true);
    },
  );

  it.each(['evil.example.com', 'localhost.evil.example', '127.0.0.1.nip.io', '192.168.1.5:3000', ''])(
    'refuses Host %s (DNS rebinding)',
    (host) => {
      // Act
      const allowed = isLoopbackHost(host || undefined);
      // Assess
      expect(allowed).toBe(false);
    },
  );
});
