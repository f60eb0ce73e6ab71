/**
 * A tiny HTTP server that answers the SES v2 SendEmail call the way SES does when it refuses:
 * REST-JSON errors with `x-amzn-ErrorType` (MessageRejected, TooManyRequestsException, …). The
 * local SES (aws-ses-v2-local) accepts everything, so the refusal paths need this stand-in.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SesAnswer {
  status: number;
  /** SES error name; absent for success. */
  type?: string;
  message?: string;
}

export interface SesStub {
  endpoint: string;
  /** Bodies of the SendEmail requests received (parsed JSON). */
  requests: { FromEmailAddress?: string; Destination?: { ToAddresses?: string[] }; Content?: unknown }[];
  /** Answers for the coming requests, in order; after them every request succeeds. */
  answer(...answers: SesAnswer[]): void;
  stop(): Promise<void>;
}

export async function startSesStub(): Promise<SesStub> {
  const queue: SesAnswer[] = [];
  const requests: SesStub['requests'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'));
      const next = queue.shift() ?? { status: 200 };
      if (next.status === 200) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ MessageId: `stub-${requests.length}` }));
        return;
      }
      res.writeHead(next.status, {
        'content-type': 'application/json',
        'x-amzn-errortype': `${next.type}:http://internal.amazon.com/coral/com.amazonaws.sesv2/`,
        'x-amzn-requestid': `req-${requests.length}`,
      });
      res.end(JSON.stringify({ message: next.message }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    answer: (...answers) => void queue.push(...answers),
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
