/**
 * Hostile mail against Dovecot: ≥150 generated messages of every kind that has broken an import
 * (thousands of parts, Content-Types S3 refuses, broken encodings, filenames of every shape, huge
 * headers, messages Dovecot sends broken), each followed by an ordinary one. The process must
 * never die, every message ends imported or quarantined with a reason, the one after each poison
 * message is imported, a second poll imports nothing, and a failure leaves no part files behind.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rawMail } from '#test/support/mail';
import { inboxFixture, sid } from './support.ts';

const { ctx, ports, makeBox, poll } = inboxFixture();

const CRLF = '\r\n';

/** A multipart message with the given parts (each: headers and body), boundary `b`. */
function multipart(
  subject: string,
  parts: { headers: string[]; body: string }[],
  extra: string[] = [],
): Buffer {
  const head = [
    'From: Hostile <hostile@client.test>',
    'To: Sales <sales@studio.test>',
    `Subject: ${subject}`,
    'Date: Mon, 01 Jun 2026 10:00:00 +0000',
    `Message-ID: <${subject.replace(/\W/g, '')}-${Math.random().toString(36).slice(2)}@client.test>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b"',
    ...extra,
  ].join(CRLF);
  const body = parts.map((p) => `--b${CRLF}${p.headers.join(CRLF)}${CRLF}${CRLF}${p.body}${CRLF}`).join('');
  return Buffer.from(`${head}${CRLF}${CRLF}${body}--b--${CRLF}`, 'utf8');
}

const attachment = (contentType: string, disposition: string, body = 'aGVsbG8=') => ({
  headers: [
    `Content-Type: ${contentType}`,
    `Content-Disposition: ${disposition}`,
    'Content-Transfer-Encoding: base64',
  ],
  body,
});

const CONTENT_TYPES = [
  'image/jpeg山',
  'image/jpeg; name="ok.jpg"',
  '',
  ';;;',
  '/',
  'application/',
  '/octet-stream',
  'text/plain; charset="utf-8',
  'text/plain; charset=x-unknown-charset',
  `application/${'x'.repeat(5000)}`,
  'APPLICATION/PDF',
  'image/png\u0000',
  'multipart/mixed',
  'message/rfc822',
  'text/html; charset=utf-7',
  "application/octet-stream; name*=utf-8''%E5%B1%B1.bin",
  'image/ jpeg',
  'ïmage/jpeg',
  'application/x-\u00e9',
  'text/calendar; method=REQUEST',
];

const FILENAMES = [
  '',
  '""',
  '"../../../etc/passwd"',
  `"${'a'.repeat(1000)}.txt"`,
  '"con"',
  '"..."',
  '"/"',
  '"a\\\\b.txt"',
  '"=?utf-8?B?5bGx5bGx5bGx?=.jpg"',
  '"=?utf-8?B?broken"',
  "*=utf-8''%E5%B1%B1%20%F0%9F%93%B7.jpg",
  "*=utf-8''%ZZ%broken",
  '*0=part; filename*1=two.txt',
  '"with\ttab.txt"',
  '"emoji 📷.jpg"',
  '"quote\\".txt"',
  'unquoted name with spaces.txt',
  '"null\u0000byte.txt"',
  '"%00.txt"',
  '"CR\rLF.txt"',
];

/** The poison messages; each kind may also be well-formed but odd. Returns [label, bytes]. */
export function hostileMessages(): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  const tiny = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      attachment('application/octet-stream', `attachment; filename="t${i}.bin"`),
    );
  out.push(['5,000 tiny attachments', multipart('5000 parts', tiny(5000))]);
  out.push(['20,000 MIME parts', multipart('20000 parts', tiny(20_000))]);
  out.push(['1,001 parts', multipart('1001 parts', tiny(1001))]);
  for (const [i, ct] of CONTENT_TYPES.entries()) {
    out.push([
      `content type ${i}`,
      multipart(`ctype ${i}`, [attachment(ct, `attachment; filename="c${i}.bin"`)]),
    ]);
  }
  for (const [i, fn] of FILENAMES.entries()) {
    const disposition = fn.startsWith('*') ? `attachment; filename${fn}` : `attachment; filename=${fn}`;
    out.push([
      `filename ${i}`,
      multipart(`fname ${i}`, [attachment('application/octet-stream', disposition)]),
    ]);
    out.push([
      `text part with filename ${i}`,
      multipart(`tfname ${i}`, [
        {
          headers: ['Content-Type: text/plain', `Content-Disposition: inline; filename=${fn || 'x'}`],
          body: 'notes',
        },
      ]),
    ]);
  }
  // Over 1 MB, failing early in the parse (a header over the cap): streamed, not in memory.
  out.push([
    'large, header over the cap',
    Buffer.concat([
      Buffer.from(`From: a@client.test${CRLF}Subject: huge header${CRLF}X-Big: `),
      Buffer.alloc(1_200_000, 'h'),
      Buffer.from(`${CRLF}${CRLF}body${CRLF}`),
    ]),
  ]);
  out.push([
    'large, part header over the cap',
    multipart('part header', [
      { headers: ['Content-Type: text/plain', `X-Long: ${'p'.repeat(1_100_000)}`], body: 'x' },
    ]),
  ]);
  out.push(['no headers at all', Buffer.from(`just some bytes${CRLF}and more${CRLF}`)]);
  out.push(['binary garbage', Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 37) % 256))]);
  out.push([
    'a 2 MB line',
    Buffer.from(`From: a@client.test${CRLF}Subject: long line${CRLF}${CRLF}${'z'.repeat(2_000_000)}${CRLF}`),
  ]);
  out.push([
    'bad base64',
    multipart('bad base64', [attachment('image/png', 'attachment; filename="x.png"', '!!!!****')]),
  ]);
  out.push([
    'bad quoted-printable',
    multipart('bad qp', [
      {
        headers: ['Content-Type: text/plain', 'Content-Transfer-Encoding: quoted-printable'],
        body: '=ZZ=\r\n=',
      },
    ]),
  ]);
  out.push([
    'unknown transfer encoding',
    multipart('x-enc', [
      { headers: ['Content-Type: text/plain', 'Content-Transfer-Encoding: x-weird'], body: 'x' },
    ]),
  ]);
  out.push([
    'missing closing boundary',
    Buffer.from(
      multipart('no end', [attachment('image/png', 'attachment')])
        .toString()
        .replace('--b--', ''),
    ),
  ]);
  out.push([
    'multipart without boundary',
    Buffer.from(
      `From: a@client.test${CRLF}Subject: no boundary${CRLF}Content-Type: multipart/mixed${CRLF}${CRLF}--x${CRLF}hi${CRLF}`,
    ),
  ]);
  let nested = 'innermost';
  for (let depth = 0; depth < 60; depth++) {
    nested = `Content-Type: multipart/mixed; boundary="n${depth}"${CRLF}${CRLF}--n${depth}${CRLF}${nested}${CRLF}--n${depth}--`;
  }
  out.push(['nested 60 deep', Buffer.from(`From: a@client.test${CRLF}Subject: deep${CRLF}${nested}${CRLF}`)]);
  out.push([
    'truncated message/rfc822',
    multipart('rfc822', [
      {
        headers: ['Content-Type: message/rfc822'],
        body: 'From: inner@x.test\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n',
      },
    ]),
  ]);
  out.push([
    'NUL bytes in headers',
    Buffer.from(`From: a\u0000@client.test${CRLF}Subject: nul\u0000${CRLF}${CRLF}x${CRLF}`),
  ]);
  out.push([
    'invalid UTF-8',
    Buffer.concat([
      Buffer.from(`From: a@client.test${CRLF}Subject: `),
      Buffer.from([0xff, 0xfe, 0xc3]),
      Buffer.from(`${CRLF}${CRLF}body${CRLF}`),
    ]),
  ]);
  out.push([
    'encoded-word soup',
    Buffer.from(
      `From: =?x-bogus?Q?=FF?= <a@client.test>${CRLF}To: =?utf-8?B?!!!?=${CRLF}Subject: =?utf-8?Q?=E5=B1?=${CRLF}${CRLF}x${CRLF}`,
    ),
  ]);
  out.push([
    '10,000 recipients',
    Buffer.from(
      `From: a@client.test${CRLF}To: ${Array.from({ length: 10_000 }, (_, i) => `r${i}@x.test`).join(', ')}${CRLF}Subject: many${CRLF}${CRLF}x${CRLF}`,
    ),
  ]);
  out.push([
    'first line a lone dot',
    Buffer.from(`.${CRLF}From: a@client.test${CRLF}Subject: dot${CRLF}${CRLF}x${CRLF}`),
  ]);
  return out;
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe('a mailbox full of hostile mail', () => {
  it('imports or quarantines every message with a reason, the one after each poison message too, and a second poll imports nothing', {
    timeout: 600_000,
  }, async () => {
    // Prepare
    const { box, deliver } = await makeBox({ leaveOnServer: false });
    const hostile = hostileMessages();
    for (const [i, [, raw]] of hostile.entries()) {
      await deliver(raw);
      await deliver(rawMail({ subject: `after poison ${i}` }));
    }
    const total = hostile.length * 2;
    // Act
    const first = await poll(box.id, ports, 500_000);
    const second = await poll(box.id, ports, 120_000);
    // Assess
    expect(total).toBeGreaterThanOrEqual(150);
    expect(first.status).not.toBe('failed');
    const c = first.run!.counts;
    expect(c.seen).toBe(total);
    // Each message accounted for: imported, quarantined, or (the same bytes twice) skipped.
    expect(c.imported + c.quarantined + c.skipped).toBe(total);
    const messages = [];
    let cursor: string | undefined;
    do {
      const page = await ctx.d.repos.messages.listUnassigned(sid, 500, cursor);
      messages.push(...page.items.filter((m) => m.boxId === box.id));
      cursor = page.nextCursor;
    } while (cursor);
    const subjects = new Set(messages.filter((m) => m.status === 'imported').map((m) => m.subject));
    for (let i = 0; i < hostile.length; i++) expect(subjects).toContain(`after poison ${i}`);
    const quarantined = messages.filter((m) => m.status === 'quarantined');
    for (const m of quarantined) expect(m.error, `reason for ${m.id}`).toMatch(/\w/);
    expect(first.run!.errors.filter((e) => e.kind === 'quarantined').length).toBeGreaterThan(0);
    expect(second.run?.counts).toMatchObject({ imported: 0, quarantined: 0 });
    expect(second.status).not.toBe('failed');
    // A failed parse leaves no part files: every file under parts/ belongs to an imported message.
    const keep = new Set(
      messages.flatMap((m) => [m.textKey, m.htmlKey, ...m.attachments.map((a) => a.blobKey)].filter(Boolean)),
    );
    const root = join(ctx.d.dir, 'blobs');
    const parts = filesUnder(join(root, 'parts', sid)).map((p) => p.slice(root.length + 1));
    const stray = parts.filter((p) => !keep.has(p));
    expect(stray).toEqual([]);
    for (const m of quarantined) expect(filesUnder(join(root, 'parts', sid, m.id))).toEqual([]);
    // What is stored may go from the server; what could not be had stays there.
    expect(await ctx.dovecot.messageCount(box.id)).toBeLessThanOrEqual(c.quarantined);
  });
});
