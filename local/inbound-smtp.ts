/**
 * The local twin of SES email receiving: an SMTP server on loopback that accepts mail for the
 * receiving domain, stores each message as SES's S3 action would (`inbound/<id>`), and hands the
 * same "Received" notice SES publishes to the inbox-poll function as an SQS record. A record the
 * handler reports failed is delivered again (as SQS would), up to `maxReceives`, then kept as a
 * dead letter, so `npm start` shows the push path end to end with the queue's semantics.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { localPartOn } from '#lib/domain/receiving';
import type { BlobStore } from '#lib/ports/index';

export interface QueueRecord {
  messageId: string;
  body: string;
  eventSource: 'aws:sqs';
}

/** The inbox-poll handler's answer to a batch (SQS ReportBatchItemFailures). */
export type PushHandler = (event: {
  Records: QueueRecord[];
}) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;

export interface InboundSmtpOptions {
  domain: string;
  blobs: BlobStore;
  handler: PushHandler;
  port?: number;
  /** Deliveries of one notice before it is a dead letter (SQS maxReceiveCount). Default 5. */
  maxReceives?: number;
  /** Wait before a failed notice is delivered again (SQS visibility timeout). Default 1 s. */
  retryDelayMs?: number;
  /** Largest message accepted (SES receiving: 40 MB). */
  maxBytes?: number;
  onDeadLetter?: (record: QueueRecord, error: string) => void;
}

export interface InboundSmtp {
  url: string;
  port: number;
  /** Notices that exhausted their deliveries. */
  deadLetters: QueueRecord[];
  /** Resolves when every accepted message has been handled (or dead-lettered). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

/** SES's "Received" notification, as SNS delivers it to the queue. */
function sesNotice(id: string, key: string, recipients: string[]): string {
  const verdict = { status: 'PASS' };
  const message = {
    notificationType: 'Received',
    mail: { messageId: id, destination: recipients, timestamp: new Date().toISOString() },
    receipt: {
      recipients,
      // No spam or virus scanning here: SES's GRAY ("could not tell") is the honest answer.
      spamVerdict: { status: 'GRAY' },
      virusVerdict: { status: 'GRAY' },
      spfVerdict: verdict,
      dkimVerdict: verdict,
      dmarcVerdict: verdict,
      action: { type: 'S3', bucketName: 'local', objectKey: key },
    },
  };
  return JSON.stringify({ Type: 'Notification', Message: JSON.stringify(message) });
}

export async function startInboundSmtp(options: InboundSmtpOptions): Promise<InboundSmtp> {
  const maxReceives = options.maxReceives ?? 5;
  const retryDelayMs = options.retryDelayMs ?? 1_000;
  const maxBytes = options.maxBytes ?? 40 * 1024 * 1024;
  const deadLetters: QueueRecord[] = [];
  const pending = new Set<Promise<void>>();

  async function deliver(record: QueueRecord): Promise<void> {
    for (let receive = 1; ; receive++) {
      let error = 'the handler reported it failed';
      try {
        const { batchItemFailures } = await options.handler({ Records: [record] });
        if (batchItemFailures.length === 0) return;
      } catch (e) {
        error = (e as Error).message;
      }
      if (receive >= maxReceives) {
        deadLetters.push(record);
        options.onDeadLetter?.(record, error);
        return;
      }
      await new Promise((r) => setTimeout(r, retryDelayMs));
    }
  }

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    size: maxBytes,
    banner: 'studio-mail inbound (local twin of SES receiving)',
    onRcptTo(address, _session, callback) {
      if (!localPartOn(address.address, options.domain)) {
        const error = new Error(
          `550 5.1.1 This server receives mail for @${options.domain} only`,
        ) as Error & {
          responseCode: number;
        };
        error.responseCode = 550;
        return callback(error);
      }
      callback();
    },
    onData(stream, session, reply) {
      // One answer per message: a dropped client fails both the stream and the store.
      let answered = false;
      const callback = (error?: Error | null) => {
        if (answered) return;
        answered = true;
        reply(error);
      };
      const id = randomUUID();
      const key = `inbound/${id}`;
      // Read now: the session's envelope is reset for the next message once this one is answered.
      const recipients = session.envelope.rcptTo.map((r) => r.address);
      stream.on('error', (error) => callback(error));
      options.blobs
        .put(key, stream, 'message/rfc822')
        .then(() => {
          if ((stream as unknown as { sizeExceeded?: boolean }).sizeExceeded) {
            const error = new Error('552 5.3.4 Message too large') as Error & { responseCode: number };
            error.responseCode = 552;
            void options.blobs.delete(key).catch(() => {});
            return callback(error);
          }
          // Stored: accepted, as SES accepts once the S3 action has written it.
          callback();
          const job = deliver({
            messageId: randomUUID(),
            body: sesNotice(id, key, recipients),
            eventSource: 'aws:sqs',
          });
          pending.add(job);
          void job.finally(() => pending.delete(job));
        })
        .catch((error: unknown) => callback(error as Error));
    },
  });
  server.on('error', () => {}); // a client's broken connection must not end the runner
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    deadLetters,
    async idle() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
