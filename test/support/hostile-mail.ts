/** Generators of hostile mail for the hostile-mail suite (test/inbox/hostile.test.ts). */
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
