// `--log-format text|json`: JSON lines for log collectors (the DaemonSet), one readable line per record
// for people at a terminal. The agent logs through pino either way; text is pino's JSON line re-printed.
import { Option } from 'commander';

export const LOG_FORMATS = ['text', 'json'] as const;

/** text when stderr is a terminal, json otherwise (a pod's log, a pipe, a file). */
export function defaultLogFormat(stderrIsTTY: boolean = process.stderr.isTTY === true): 'text' | 'json' {
  return stderrIsTTY ? 'text' : 'json';
}

export function logFormatOption(): Option {
  return new Option(
    '--log-format <format>',
    'text or json (default: text on a terminal, json otherwise)',
  ).choices(LOG_FORMATS);
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
/** pino's own fields, shown in the line's head or not at all. */
const OWN_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'app']);

/** A value as `key=value` shows it: bare when it is one plain word, else JSON (quoted, escaped). */
function fieldValue(v: unknown): string {
  if (typeof v === 'string' && /^[\w.:/@%+-]+$/.test(v)) return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v) ?? String(v);
}

/**
 * One pino JSON record as a text line: `2026-01-02T03:04:05.678Z INFO  message key=value …`. Pure.
 * A line that is not a JSON object is passed through unchanged.
 */
export function formatLogLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString() : '';
  const level = (LEVEL_NAMES[rec.level as number] ?? String(rec.level)).padEnd(5);
  // Control characters escaped as JSON escapes them, so one record stays one line.
  const msg = JSON.stringify(String(rec.msg ?? '')).slice(1, -1);
  const fields = Object.entries(rec)
    .filter(([k]) => !OWN_FIELDS.has(k))
    .map(([k, v]) => `${k}=${fieldValue(v)}`);
  return `${[time, level, msg, ...fields].filter((p) => p !== '').join(' ')}\n`;
}

/** A pino destination that re-prints each JSON record as text on `out`. */
export function textLogStream(out: { write(s: string): unknown }): { write(s: string): void } {
  return {
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line !== '') out.write(formatLogLine(line));
    },
  };
}
