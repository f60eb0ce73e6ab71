import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '#lib/domain/errors';
import {
  editDistance,
  MERGE_FIELDS,
  type MergeValues,
  mergeFieldList,
  mergeFieldNames,
  mergeValues,
  nearestMergeField,
  renderMergeFields,
  unknownMergeFields,
} from '#lib/domain/merge-fields';
import { composeMime, newMessageId } from '#lib/send/compose';
import { htmlToText } from '#lib/send/html-text';
import { renderEmail } from '#lib/send/render';

const studio = { name: 'Lumen Photo Studio', email: 'hello@lumen.test' };
const user = { firstName: 'Maya', lastName: 'Ortiz', displayName: 'Lumen Photo', email: 'hello@lumen.test' };
const now = new Date('2026-03-05T15:00:00Z');

function values(client: { firstName?: string; lastName?: string } | undefined): MergeValues {
  return mergeValues({ client, studio, user, now, timeZone: 'America/New_York' });
}

/** Composes a message with this subject and body and reads it back with mailparser. */
async function roundTrip(subject: string, text: string, html?: string, name?: string) {
  const mail = await composeMime({
    from: { address: 'hello@lumen.test', name: 'Lumen Photo' },
    to: [{ address: 'jose@example.test', ...(name ? { name } : {}) }],
    cc: [],
    bcc: [],
    subject,
    text,
    html,
    messageId: newMessageId('hello@lumen.test'),
    date: now,
    references: [],
  });
  return { mail, parsed: await simpleParser(mail.raw) };
}

describe('mergeFieldNames', () => {
  it('lists each field once in order of first use, with or without spaces and fallbacks', () => {
    // Act
    const names = mergeFieldNames(
      'Hi {{client.firstName}}, {{ studio.name }} here',
      '{{client.firstName|there}} {{date.today}}',
      undefined,
    );
    // Assess
    expect(names).toEqual(['client.firstName', 'studio.name', 'date.today']);
  });
});

describe('renderMergeFields', () => {
  it('escapes a client name with markup in HTML and leaves it as typed in text', () => {
    // Prepare
    const v = values({ firstName: '<script>alert("x")</script>', lastName: "O'Brien & Co" });
    // Act
    const html = renderMergeFields('<p>Dear {{client.fullName}}</p>', v, 'html');
    const text = renderMergeFields('Dear {{client.fullName}}', v, 'text');
    // Assess
    expect(html).toBe('<p>Dear &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; O&#39;Brien &amp; Co</p>');
    expect(text).toBe('Dear <script>alert("x")</script> O\'Brien & Co');
  });

  it('writes the fallback for missing data, and nothing when there is no fallback', () => {
    // Prepare
    const v = values({ firstName: '', lastName: 'Lee' });
    // Act
    const withFallback = renderMergeFields('Hi {{client.firstName|there}}!', v, 'text');
    const without = renderMergeFields('Hi {{client.firstName}}!', v, 'text');
    const noClient = renderMergeFields('Hi {{ client.firstName | friend }}!', values(undefined), 'html');
    // Assess
    expect(withFallback).toBe('Hi there!');
    expect(without).toBe('Hi !');
    expect(noClient).toBe('Hi friend!');
  });

  it('fills studio, user and date fields in the studio time zone', () => {
    // Prepare
    const late = mergeValues({
      studio,
      user,
      now: new Date('2026-03-06T03:30:00Z'),
      timeZone: 'America/New_York',
    });
    // Act
    const out = renderMergeFields(
      '{{studio.name}} / {{user.fullName}} / {{date.today}} / {{date.short}} / {{date.iso}} / {{date.weekday}} / {{date.year}}',
      late,
      'text',
    );
    // Assess
    expect(out).toBe(
      'Lumen Photo Studio / Maya Ortiz / March 5, 2026 / 3/5/2026 / 2026-03-05 / Thursday / 2026',
    );
  });

  it('has a value for every documented field', () => {
    // Prepare
    const v = mergeValues({
      client: { firstName: 'A', lastName: 'B', company: 'C', phone: '1', email: 'a@b.test' },
      studio: { ...studio, phone: '2', website: 'w', address: 'addr' },
      user: { ...user, title: 't', phone: '3' },
      now,
      timeZone: 'UTC',
      unsubscribeUrl: 'https://api.test/unsubscribe/t',
    });
    // Assess
    for (const name of Object.keys(MERGE_FIELDS)) expect(v[name as keyof MergeValues], name).toBeTruthy();
  });
});

describe('merge fields in large bodies', () => {
  it('renders and checks a 500 KB body that would make a backtracking pattern stall, in linear time', () => {
    // Prepare: an unclosed fallback followed by spaces, the worst case for a lazy fallback before `\s*`.
    const hostile = `{{client.firstName|${' '.repeat(500_000)}`;
    const started = performance.now();
    // Act
    const rendered = renderMergeFields(hostile, values(undefined), 'html');
    const unknown = unknownMergeFields(hostile);
    const names = mergeFieldNames(hostile);
    // Assess
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(rendered).toBe(hostile);
    expect(unknown).toEqual([]);
    expect(names).toEqual([]);
  });

  it('still trims a fallback written with spaces around it', () => {
    // Act
    const out = renderMergeFields('Hi {{ client.firstName |  dear friend  }}!', values(undefined), 'text');
    // Assess
    expect(out).toBe('Hi dear friend!');
  });
});

describe('unknownMergeFields', () => {
  it('lists every unknown field once, with the nearest known field, and malformed braces', () => {
    // Act
    const unknown = unknownMergeFields(
      'Hi {{client.firstname}} {{client.frstName}}',
      '{{client.frstName}} {{ client first }} {{studio.name}} {{invoice.totalAmountDue|x}}',
    );
    // Assess
    expect(unknown).toEqual([
      { name: 'client.firstname', suggestion: 'client.firstName' },
      { name: 'client.frstName', suggestion: 'client.firstName' },
      { name: 'client first', suggestion: 'client.firstName' },
      { name: 'invoice.totalAmountDue' },
    ]);
  });
});

describe('nearestMergeField', () => {
  it('suggests the known field a few edits away and nothing for a name far from all', () => {
    // Act
    const near = ['studio.nmae', 'user.emial', 'date.todya', 'client.phones', 'x'].map(nearestMergeField);
    // Assess
    expect(near).toEqual(['studio.name', 'user.email', 'date.today', 'client.phone', undefined]);
  });

  it('counts insertions, deletions and substitutions', () => {
    // Act
    const distances = [
      editDistance('kitten', 'sitting'),
      editDistance('', 'abc'),
      editDistance('abc', 'abc'),
      editDistance('flaw', 'lawn'),
    ];
    // Assess
    expect(distances).toEqual([3, 3, 0, 2]);
  });
});

describe('mergeFieldList', () => {
  it('gives every field a description and an example, in the declared order', () => {
    // Act
    const list = mergeFieldList();
    // Assess
    expect(list.map((f) => f.name)).toEqual(Object.keys(MERGE_FIELDS));
    for (const f of list) {
      expect(f.description, f.name).not.toBe('');
      expect(f.example, f.name).not.toBe('');
    }
  });
});

describe('renderEmail', () => {
  it('refuses unknown fields in every part, naming each field and part', async () => {
    // Act
    const error = (await renderEmail(
      { subject: 'Hi {{client.nick}}', html: '<p>{{user.shoeSize}}</p>', origin: 'formLetter' },
      { id: 'sig', html: '{{studio.fax}}', text: '' },
      values(undefined),
    ).catch((e: unknown) => e)) as ValidationError;
    // Assess
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.issues.map((i) => i.field)).toEqual([
      'formLetter.subject',
      'formLetter.html',
      'signature.html',
    ]);
    expect(error.message).toContain('{{client.nick}}, {{user.shoeSize}}, {{studio.fax}}');
  });

  it('appends the signature to both versions and derives the text from HTML-only content', async () => {
    // Act
    const out = await renderEmail(
      {
        subject: 'Proofs for {{client.firstName}}',
        html: '<p>Hello&nbsp;{{client.firstName}}</p>',
        origin: '',
      },
      { id: 'sig-1', html: '<b>{{user.fullName}}</b>', text: '{{user.fullName}}\n{{studio.name}}' },
      values({ firstName: 'Ann & Bo' }),
    );
    // Assess
    expect(out.subject).toBe('Proofs for Ann & Bo');
    expect(out.html).toBe(
      '<p>Hello&nbsp;Ann &amp; Bo</p>\n<br>\n<div class="signature"><b>Maya Ortiz</b></div>',
    );
    expect(out.text).toBe('Hello\u00A0Ann & Bo\n\n-- \nMaya Ortiz\nLumen Photo Studio');
    expect(out.signatureId).toBe('sig-1');
  });

  it('keeps a line break in a merged value out of the subject header', async () => {
    // Act
    const out = await renderEmail(
      { subject: 'Hi {{client.firstName}}', text: 'x', origin: '' },
      undefined,
      values({ firstName: 'Ann\r\nBcc: evil@example.test' }),
    );
    // Assess
    expect(out.subject).toBe('Hi Ann Bcc: evil@example.test');
  });

  it('turns HTML into readable text', () => {
    // Act
    const text = htmlToText('<style>p{}</style><p>One<br>Two</p><ul><li>A</li></ul>&lt;ok&gt; &amp; &#233;');
    // Assess
    expect(text).toBe('One\nTwo\n\n- A\n\n<ok> & é');
  });

  it('decodes every named entity, keeps link URLs and puts paragraphs and table cells apart', () => {
    // Act
    const text = htmlToText(
      '<p>We&rsquo;re ready&hellip; <a href="https://lumen.test/book">Book here</a></p>' +
        '<table><tr><td>Next</td><td>A</td></tr><tr><th>B</th></tr></table>' +
        '<p><a href="https://lumen.test">https://lumen.test</a> &copy; 2026</p>',
    );
    // Assess
    expect(text).toBe(
      'We’re ready… Book here <https://lumen.test/book>\n\nNext\nA\nB\n\nhttps://lumen.test © 2026',
    );
  });

  it('decodes each entity once and drops the head, titles and scripts', () => {
    // Act
    const text = htmlToText(
      '<head><title>T</title></head>&#x1F4F8; &amp;lt; &#99999999; &bogus; a<>b<br/>c <script>x</script>d',
    );
    // Assess
    expect(text).toBe('📸 &lt; \uFFFD &bogus; a<>b\nc d');
  });

  it('takes linear time on hostile markup (unclosed tags, runs of spaces)', () => {
    // Prepare
    const n = 500_000;
    const hostile = [
      '<'.repeat(n),
      '<style'.repeat(n / 6),
      '<li'.repeat(n / 3),
      `${' '.repeat(n)}x\n`,
      // The HTML parser's cost grows with the nesting depth on every element.
      '<b>'.repeat(n / 3),
    ];
    for (const html of hostile) {
      const started = performance.now();
      // Act
      htmlToText(html);
      // Assess
      expect(performance.now() - started).toBeLessThan(1_000);
    }
  });
});

describe('non-ASCII names in MIME', () => {
  const cases = [
    { label: 'accented Latin', first: 'José', last: 'Núñez' },
    { label: 'Japanese', first: '山田', last: '太郎' },
    { label: 'emoji', first: 'Zoë 📸', last: '🎉' },
  ];

  for (const c of cases) {
    it(`encodes a subject and body with ${c.label} names and reads them back unchanged`, async () => {
      // Prepare
      const rendered = await renderEmail(
        {
          subject: 'Your photos, {{client.fullName}}!',
          html: '<p>Dear {{client.firstName}} {{client.lastName}}</p>',
          origin: '',
        },
        undefined,
        values({ firstName: c.first, lastName: c.last }),
      );
      // Act
      const { mail, parsed } = await roundTrip(
        rendered.subject,
        rendered.text,
        rendered.html,
        `${c.first} ${c.last}`,
      );
      // Assess
      const headerBlock = mail.raw.toString('latin1').split('\r\n\r\n')[0] as string;
      expect(/^[\x20-\x7e\r\n\t]*$/.test(headerBlock)).toBe(true);
      expect(headerBlock).toMatch(/^Subject: =\?UTF-8\?[QB]\?/m);
      expect(parsed.subject).toBe(`Your photos, ${c.first} ${c.last}!`);
      expect(parsed.text?.trim()).toBe(`Dear ${c.first} ${c.last}`);
      expect(parsed.html).toContain(`Dear ${c.first} ${c.last}`);
      const to = Array.isArray(parsed.to) ? parsed.to[0] : parsed.to;
      expect(to?.value[0]?.name).toBe(`${c.first} ${c.last}`);
    });
  }

  it('keeps a plain ASCII subject unencoded', async () => {
    // Act
    const { mail, parsed } = await roundTrip('Session on Friday', 'See you then.');
    // Assess
    expect(mail.raw.toString('latin1')).toContain('\r\nSubject: Session on Friday\r\n');
    expect(parsed.subject).toBe('Session on Friday');
    expect(mail.raw.includes('\n') && !/[^\r]\n/.test(mail.raw.toString('latin1'))).toBe(true);
  });
});
