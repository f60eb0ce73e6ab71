/**
 * SPA = NTLM over IMAP (`AUTHENTICATE NTLM`, as Exchange on-premises offers it). imapflow has
 * no NTLM, so this subclass takes over its log-in step (the `authenticate` method connect() calls
 * after CAPABILITY and STARTTLS) and runs the three NTLM messages of lib/auth-mech/ntlm.ts through
 * imapflow's own command channel; everything after the log-in is imapflow's as usual.
 * A refusal whose CHALLENGE named other domains than the box's is told apart (NTLM_DOMAIN), so the
 * connection test can name the Domain field.
 */
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import {
  authenticateMessage,
  isForeignDomain,
  type NtlmChallenge,
  type NtlmCredentials,
  NtlmError,
  negotiateMessage,
  parseChallenge,
} from '#lib/auth-mech/ntlm';
import { SaslCode } from '#lib/pop3/client';
import { ImapError, toImapError } from './errors.ts';

/** The parts of imapflow's (undocumented) connection this log-in uses. */
interface Internals {
  state: number;
  states: { NOT_AUTHENTICATED: number };
  expectCapabilityUpdate: boolean;
  capabilities: Map<string, boolean | number>;
  host: string;
  port: number;
  exec(
    command: string,
    attributes: { type: string; value: string }[],
    options: { onPlusTag: (response: { attributes?: { type: string; value: string }[] }) => Promise<void> },
  ): Promise<{ next(): void }>;
  write(chunk: string): void;
  setAuthenticationState(): Promise<void>;
}

export class NtlmImapFlow extends ImapFlow {
  readonly #credentials: NtlmCredentials;

  constructor(options: ImapFlowOptions, credentials: NtlmCredentials) {
    super(options);
    this.#credentials = credentials;
  }

  /** Replaces imapflow's log-in (called by connect()). */
  async authenticate(): Promise<boolean> {
    const self = this as unknown as Internals;
    if (self.state !== self.states.NOT_AUTHENTICATED) return true; // PREAUTH
    const where = { host: self.host, port: self.port, command: 'AUTHENTICATE', login: true };
    if (!this.capabilities.has('AUTH=NTLM'))
      throw new ImapError('auth', 'The server does not offer AUTHENTICATE NTLM', {
        command: 'AUTHENTICATE',
        commandLine: 'AUTH NTLM',
        code: SaslCode.UNAVAILABLE,
      });
    self.expectCapabilityUpdate = true;
    let challenge: NtlmChallenge | undefined;
    let broken: NtlmError | undefined;
    let step = 0;
    try {
      const response = await self.exec('AUTHENTICATE', [{ type: 'ATOM', value: 'NTLM' }], {
        onPlusTag: async (plus) => {
          step += 1;
          try {
            if (step === 1) {
              self.write(negotiateMessage().toString('base64'));
              return;
            }
            if (step === 2) {
              const text = plus.attributes?.[0]?.value ?? '';
              challenge = parseChallenge(Buffer.from(text, 'base64'));
              self.write(authenticateMessage(challenge, this.#credentials).toString('base64'));
              return;
            }
            throw new NtlmError('The server asked for more NTLM steps than there are');
          } catch (error) {
            broken = error instanceof NtlmError ? error : new NtlmError(String(error));
            // Cancels the exchange (RFC 9051 6.2.2): the server answers BAD and the command ends.
            self.write('*');
          }
        },
      });
      response.next();
    } catch (error) {
      if (broken)
        throw new ImapError('protocol', broken.message, {
          command: 'AUTHENTICATE',
          commandLine: 'AUTH NTLM',
          code: SaslCode.NTLM_PROTOCOL,
          cause: broken,
        });
      const mapped = toImapError(error, where);
      if (mapped.kind !== 'auth') throw mapped;
      const foreign = challenge && isForeignDomain(challenge, this.#credentials.domain);
      throw new ImapError(
        'auth',
        foreign && challenge
          ? `${mapped.message} (the server is in domain ${challenge.domains.join(' / ')})`
          : mapped.message,
        {
          command: 'AUTHENTICATE',
          commandLine: 'AUTH NTLM',
          serverText: mapped.serverText,
          responseCode: mapped.responseCode,
          code: foreign ? SaslCode.NTLM_DOMAIN : undefined,
          cause: error,
        },
      );
    }
    await self.setAuthenticationState();
    return true;
  }
}
