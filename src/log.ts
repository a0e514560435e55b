// Structured logging with pino. Secrets never reach a log line: the redact list covers every field name under
// which a password, token, API key or digest response could travel.
import pino, { type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'password', '*.password', '*.*.password', 'sip.password', '*.sip.password',
  'api_key', '*.api_key', 'auth_token', '*.auth_token', 'token', '*.token',
  'credentials', '*.credentials', 'authorization', '*.authorization', 'headers.authorization',
  'headers["x-auth-token"]', 'response', '*.response', 'ha1', '*.ha1', 'secret', '*.secret',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { name: 'lamplighter' } },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** A logger that drops everything: for unit tests that do not look at logs. */
export const silentLogger: Logger = pino({ level: 'silent' });

/** A SIP message for a trace log line, with credentials (Authorization headers) cut out. */
export function redactSipText(text: string): string {
  return text.replace(/^((?:proxy-)?authorization|x-auth-token)[ \t]*:.*$/gim, '$1: [redacted]');
}
