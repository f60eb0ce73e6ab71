import { describe, expect, it } from 'vitest';
import type { SmtpOptions } from '#lib/adapters/mail';
import type { MailTransport } from '#lib/ports/index';
import { SharedSmtpTransports } from '#lib/send/transport';

/** A factory that records what it opened and what was closed. */
function recordingFactory() {
  const opened: SmtpOptions[] = [];
  let closed = 0;
  const smtp = (options: SmtpOptions): MailTransport => {
    opened.push(options);
    return {
      kind: 'smtp',
      send: async () => ({ messageId: '<x@y>', accepted: [], rejected: [] }),
      verify: async () => {},
      close: () => {
        closed += 1;
      },
    };
  };
  return { smtp, opened, closed: () => closed };
}

const options: SmtpOptions = {
  host: 'smtp.lumen.test',
  port: 587,
  security: 'starttls',
  user: 'maya',
  password: 'one',
};

describe('SharedSmtpTransports', () => {
  it('lets sends in flight with the same settings share one pooled transport, closed when the last one is done', () => {
    // Prepare
    const f = recordingFactory();
    const shared = new SharedSmtpTransports(f.smtp);

    // Act
    const a = shared.acquire(options);
    const b = shared.acquire({ ...options });
    a.release();
    const closedWhileOneInFlight = f.closed();
    b.release();
    b.release();

    // Assess
    expect(a.transport).toBe(b.transport);
    expect(f.opened).toHaveLength(1);
    expect(f.opened[0]!.pool).toBe(true);
    expect(closedWhileOneInFlight).toBe(0);
    expect(f.closed()).toBe(1);
    expect(shared.size).toBe(0);
  });

  it('opens a transport of its own for other credentials and again after the last one closed', () => {
    // Prepare
    const f = recordingFactory();
    const shared = new SharedSmtpTransports(f.smtp);

    // Act
    const a = shared.acquire(options);
    const b = shared.acquire({ ...options, password: 'two' });
    a.release();
    b.release();
    shared.acquire(options).release();

    // Assess
    expect(a.transport).not.toBe(b.transport);
    expect(f.opened).toHaveLength(3);
    expect(f.closed()).toBe(3);
  });
});
