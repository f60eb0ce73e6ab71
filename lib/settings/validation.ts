/** Field builders shared by the settings schemas; validation itself lives in lib/http/validate.ts. */
import * as z from 'zod';
import { isMailbox } from '#lib/domain/addresses';
import { isValidTimeZone } from '#lib/domain/cron';

import { oneLine } from '#lib/http/validate';

export { check, Issues, oneLine, toIssues, validate } from '#lib/http/validate';

// ── field builders ──────────────────────────────────────────────────────────────────────────────

/** A schema-level message that still lets a missing field read "is required." */
export const unlessMissing = (message: string) => (iss: { input: unknown }) =>
  iss.input === undefined ? undefined : message;

export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Ids chosen by clients: safe in keys, URLs and secret names. */
export const clientId = z
  .string()
  .regex(ID_PATTERN, { error: 'must be 1 to 64 characters: letters, digits, "-" or "_".' });

/** A reference to another record; existence is checked by the service. */
export const refId = z
  .string()
  .min(1, { error: 'must not be empty; leave the field out for none.' })
  .max(64, { error: 'is not an id this API gives out (at most 64 characters).' });

export const name = (max = 200) =>
  oneLine(
    z
      .string()
      .trim()
      .min(1, { error: 'must not be empty.' })
      .max(max, { error: `must be at most ${max} characters long.` }),
  );

/** Optional one-line text (a title, a phone number, a company name): no control characters. */
export const lineText = (max: number) =>
  oneLine(z.string().max(max, { error: `must be at most ${max} characters long.` }));

/** A client's address: ASCII or internationalised (RFC 6531), as their mail carries it. */
export const mailboxAddress = z
  .string({ error: unlessMissing('must be an email address such as name@example.com or anna@müller.de.') })
  .trim()
  .max(254, { error: 'must be at most 254 characters long.' })
  .refine(isMailbox, { error: 'must be an email address such as name@example.com or anna@müller.de.' });

export const emailAddress = z
  .email({ error: unlessMissing('must be an email address such as name@example.com.') })
  .max(254, { error: 'must be at most 254 characters long.' });

const PORT_MESSAGE = 'must be a whole number from 1 to 65535 (POP3: 995 with SSL, 110 without).';
export const port = z
  .int({ error: unlessMissing(PORT_MESSAGE) })
  .min(1, { error: PORT_MESSAGE })
  .max(65535, { error: PORT_MESSAGE });

export const smtpPort = z
  .int({
    error: unlessMissing(
      'must be a whole number from 1 to 65535 (SMTP: 587 with STARTTLS, 465 with SSL, 25 without).',
    ),
  })
  .min(1, { error: 'must be a whole number from 1 to 65535 (SMTP: 587 with STARTTLS, 465 with SSL).' })
  .max(65535, { error: 'must be a whole number from 1 to 65535 (SMTP: 587 with STARTTLS, 465 with SSL).' });

export const hostName = z
  .string()
  .trim()
  .min(1, { error: 'must not be empty: give the server name, e.g. pop.gmail.com.' })
  .max(253, { error: 'must be at most 253 characters long.' })
  // Labels of at most 63 characters between dots (bounded, so no catastrophic backtracking), or an IP.
  .regex(
    /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$|^\[?[0-9A-Fa-f:.]+\]?$/,
    {
      error: 'must be a server name such as pop.gmail.com or an IP address, without "pop3://" or a port.',
    },
  );

export const timeZone = z.string().refine(isValidTimeZone, {
  error: 'must be an IANA time zone such as America/New_York or Europe/London.',
});

export const isoDate = z.iso.date({
  error: unlessMissing('must be a date written YYYY-MM-DD, e.g. 2026-01-31.'),
});

export const hhmm = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, { error: 'must be a time written HH:MM (24-hour clock), e.g. 08:30.' });

export const password = z
  .string()
  .min(1, { error: 'must not be empty; leave the field out to keep the stored password.' })
  .max(1024, { error: 'must be at most 1024 characters long.' });

export const version = z
  .int({ error: unlessMissing('must be the whole-number version you last read.') })
  .min(1, { error: 'must be the whole-number version you last read.' });

/** `?limit=` and `?cursor=` for paged lists. */
export const pageQuery = z.object({
  limit: z.coerce
    .number({ error: 'must be a whole number from 1 to 100.' })
    .int({ error: 'must be a whole number from 1 to 100.' })
    .min(1, { error: 'must be a whole number from 1 to 100.' })
    .max(100, { error: 'must be a whole number from 1 to 100.' })
    .default(50),
  cursor: z.string().min(1).optional(),
});
