// The logging surface the observe/ and sources/ code needs: the structured-first call shape of pino
// (`log.warn({ field }, 'message')`), so a pino logger can be passed as is and tests can record.

export interface Logger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface LogRecord {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: object;
  message: string;
}

/** A logger that keeps what it was told, for tests ("was it logged, and without the token?"). */
export class RecordingLogger implements Logger {
  readonly records: LogRecord[] = [];
  debug(fields: object, message: string): void {
    this.records.push({ level: 'debug', fields, message });
  }
  info(fields: object, message: string): void {
    this.records.push({ level: 'info', fields, message });
  }
  warn(fields: object, message: string): void {
    this.records.push({ level: 'warn', fields, message });
  }
  error(fields: object, message: string): void {
    this.records.push({ level: 'error', fields, message });
  }
  /** Everything logged, serialised: for "this secret never appears" assertions. */
  text(): string {
    return this.records.map((r) => `${r.level} ${r.message} ${JSON.stringify(r.fields)}`).join('\n');
  }
}

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
