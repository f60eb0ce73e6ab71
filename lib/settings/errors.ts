/** Errors of the settings services that the shared ones in lib/domain/errors.ts do not cover. */
import { AppError } from '#lib/domain/errors';

/** Settings not saved yet: 404 with what to do about it. */
export class SettingsMissingError extends AppError {
  override readonly name = 'SettingsMissingError';
  override readonly status = 404;
  override readonly code = 'not_found';
}

/**
 * Saving a box failed because its mail server refused the login or could not be reached; nothing
 * was written. Answered 422 with the field to fix and the server's own words.
 */
export class ConnectionFailedError extends AppError {
  override readonly name = 'ConnectionFailedError';
  override readonly status = 422;
  override readonly code = 'connection_failed';
  constructor(
    readonly field: string,
    message: string,
    readonly serverReply?: string,
    readonly kind?: string,
  ) {
    super(message);
  }
}
