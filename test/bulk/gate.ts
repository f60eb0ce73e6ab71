/** SMTP transports for tests that must act while a bulk batch is mid-send. */
import type { SmtpOptions } from '#lib/adapters/mail';
import type { MailTransport } from '#lib/ports/index';

/** After `after` sends, each further send waits until `open()`; `reached` resolves when one waits. */
export function gatedSmtp(real: (o: SmtpOptions) => MailTransport, after: number) {
  let sends = 0;
  let open!: () => void;
  let reach!: () => void;
  const gate = new Promise<void>((r) => {
    open = r;
  });
  const reached = new Promise<void>((r) => {
    reach = r;
  });
  const factory = (o: SmtpOptions): MailTransport => {
    const t = real(o);
    return {
      kind: t.kind,
      send: async (mail) => {
        sends += 1;
        if (sends > after) {
          reach();
          await gate;
        }
        return t.send(mail);
      },
      verify: () => t.verify(),
      close: () => t.close(),
    };
  };
  return { factory, reached, open };
}
