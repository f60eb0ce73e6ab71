/**
 * The one place an error becomes a response body: `{ error: { code, message, field?, fields?,
 * details?, requestId } }`. The edge, the local runner and the OpenAPI `Error` schema all use it.
 */
import { AppError } from '#lib/domain/errors';

export interface ErrorBody {
  error: {
    code: string;
    message: string;
    field?: string;
    fields?: { field: string; message: string }[];
    details?: Record<string, unknown>;
    requestId?: string;
  };
}

/** The body for `error`; anything but an AppError is answered without its text (a 500). */
export function errorBody(error: unknown, requestId?: string): { status: number; body: ErrorBody } {
  if (error instanceof AppError) {
    return {
      status: error.status,
      body: {
        error: {
          code: error.code,
          message: error.message,
          field: error.field,
          fields: error.fields,
          details: error.details,
          requestId,
        },
      },
    };
  }
  return {
    status: 500,
    body: {
      error: {
        code: 'internal_error',
        message: `Something went wrong on our side. Quote request id ${requestId} when you report it.`,
        requestId,
      },
    },
  };
}
