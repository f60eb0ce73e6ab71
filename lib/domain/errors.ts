/**
 * The one error type of the API and its small named subclasses. Domain code throws these; the HTTP
 * edge (lib/http/errors.ts, `errorBody`) serialises every one the same way:
 * `{ error: { code, message, field?, fields?, details?, requestId } }`.
 * Messages are written for a person and never contain a secret.
 */
export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `connection.port`. */
  field: string;
  message: string;
}

export interface AppErrorOptions {
  /** The field to fix, when there is one. */
  field?: string;
  /** Structured facts a client may act on (e.g. a mail server's own reply); never a secret. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class AppError extends Error {
  override readonly name: string = 'AppError';
  readonly status: number = 500;
  readonly code: string = 'internal_error';
  readonly field?: string;
  readonly details?: Record<string, unknown>;
  constructor(message = '', options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.field !== undefined) this.field = options.field;
    if (options.details !== undefined) this.details = options.details;
  }
  /** Every field problem: the list of a ValidationError, or the one `field` with the message. */
  get fields(): FieldIssue[] | undefined {
    return this.field ? [{ field: this.field, message: this.message }] : undefined;
  }
}

export class ValidationError extends AppError {
  override readonly name = 'ValidationError';
  override readonly status = 400;
  override readonly code = 'validation_failed';
  constructor(readonly issues: FieldIssue[]) {
    super(issues.map((i) => `${i.field}: ${i.message}`).join('; '));
  }
  override get fields(): FieldIssue[] {
    return this.issues;
  }
  static field(field: string, message: string): ValidationError {
    return new ValidationError([{ field, message }]);
  }
}

export class UnauthorizedError extends AppError {
  override readonly name = 'UnauthorizedError';
  override readonly status = 401;
  override readonly code = 'unauthorized';
}

export class ForbiddenError extends AppError {
  override readonly name = 'ForbiddenError';
  override readonly status = 403;
  override readonly code = 'forbidden';
}

export class NotFoundError extends AppError {
  override readonly name = 'NotFoundError';
  override readonly status = 404;
  override readonly code = 'not_found';
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super(`No ${entity} with id "${id}" exists.`);
  }
}

/** No route answers this method and path (the edge and the local runner). */
export class NoRouteError extends AppError {
  override readonly name = 'NoRouteError';
  override readonly status = 404;
  override readonly code = 'no_route';
}

export class ConflictError extends AppError {
  override readonly name = 'ConflictError';
  override readonly status = 409;
  override readonly code = 'conflict';
}

/** A remote system (mail server, AWS) refused or failed; the message says what to check. */
export class UpstreamError extends AppError {
  override readonly name = 'UpstreamError';
  override readonly status = 502;
  override readonly code = 'upstream_failed';
  constructor(message: string, field?: string) {
    super(message, { field });
  }
}
