/**
 * Errors of the HTTP API. Every error response, whatever raised it (a handler, schema
 * validation, the JSON parser, the body limit, an unknown route), is JSON of one shape:
 * `{ "statusCode": 400, "error": "Bad Request", "message": "..." }`.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorBody } from './schemas.js';

/**
 * The reason phrases of the statuses the API answers with (node:http's STATUS_CODES, written
 * out so that the handlers also run in the static workbench's Web Worker, which has no Node).
 */
const STATUS_CODES: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** An error with the HTTP status it should be answered with. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export type { ErrorBody } from './schemas.js';

export function errorBody(statusCode: number, message: string): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

/**
 * An error a library call threw on validated input, as the API answers it: an `Error` is about
 * the request (a token that is not one token, clean and corrupted prompts of different lengths,
 * ...) and becomes a 400 with the library's message; `TypeError`, `RangeError` and
 * `ReferenceError` are bugs and stay 500s.
 */
export function asUserError(e: unknown): unknown {
  if (e instanceof HttpError || e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError) return e;
  if (e instanceof Error) return new HttpError(400, e.message.split('\n')[0]!);
  return e;
}

/** Maps any error to its status and message. */
export function describeError(err: unknown, bodyLimit: number): ErrorBody {
  if (err instanceof HttpError) return errorBody(err.statusCode, err.message);
  const e = err as Partial<FastifyError> & { message?: string };
  if (e.validation) return errorBody(400, e.message ?? 'invalid request');
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errorBody(413, `the request body is larger than the limit of ${bodyLimit} bytes`);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return errorBody(400, `malformed JSON body: ${e.message ?? ''}`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return errorBody(415, 'unsupported content type: send application/json');
  }
  if (err instanceof SyntaxError) return errorBody(400, `malformed JSON body: ${err.message}`);
  const status = typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500;
  return errorBody(status, e.message || (STATUS_CODES[status] ?? 'Error'));
}

/** Installs the JSON error handler. */
export function installErrorHandler(app: FastifyInstance, bodyLimit: number): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const body = describeError(err, bodyLimit);
    if (body.statusCode >= 500) req.log.error({ err }, 'request failed');
    return reply.code(body.statusCode).type('application/json; charset=utf-8').send(body);
  });
}
