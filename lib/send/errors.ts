/**
 * Named errors of the send function. Each carries its status and code; the HTTP edge
 * (lib/http/api.ts) maps any AppError to its status, so none of these becomes a 500.
 */
import { AppError } from '#lib/domain/errors';

/** The studio has no company email settings yet, so nothing can be sent. */
export class EmailNotSetUpError extends AppError {
  override readonly name = 'EmailNotSetUpError';
  override readonly status = 409;
  override readonly code = 'email_not_set_up';
  constructor() {
    super('Email is not set up for this studio yet: an admin saves the company email settings first.');
  }
}

/** The Idempotency-Key was first used for a different request (body, route or user). */
export class IdempotencyKeyReusedError extends AppError {
  override readonly name = 'IdempotencyKeyReusedError';
  override readonly status = 409;
  override readonly code = 'idempotency_key_reused';
  constructor() {
    super(
      'This Idempotency-Key was already used for a different request (another body, route or user). ' +
        'Send a new key for a new email; reuse a key only to retry the very same request.',
    );
  }
}

/** The first request with this key has not finished yet. */
export class IdempotencyInProgressError extends AppError {
  override readonly name = 'IdempotencyInProgressError';
  override readonly status = 409;
  override readonly code = 'idempotency_in_progress';
  constructor() {
    super('A request with this Idempotency-Key is still in progress; retry later (in a few seconds).');
  }
}

/** The first request with this key stopped before it recorded its outcome (e.g. a timeout). */
export class IdempotencyOutcomeUnknownError extends AppError {
  override readonly name = 'IdempotencyOutcomeUnknownError';
  override readonly status = 409;
  override readonly code = 'idempotency_outcome_unknown';
  constructor(startedAt: string) {
    super(
      `The request with this Idempotency-Key started at ${startedAt} and stopped before recording its ` +
        "outcome, so the email may or may not have left. Check the client's messages; if it is missing, " +
        'send again with a new key.',
    );
  }
}
