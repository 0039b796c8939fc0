// `-o/--output` as kubectl has it: one flag on every command that prints, text by default, and the same
// document as JSON or YAML for scripts. The YAML library is loaded only when YAML is asked for.
import { Option } from 'commander';

/** `-o, --output <format>` with its accepted values (commander refuses others, exit 2) and default. */
export function outputOption(formats: readonly string[], defaultFormat: string, what = ''): Option {
  return new Option('-o, --output <format>', what ? `output format (${what})` : 'output format')
    .choices(formats)
    .default(defaultFormat);
}

/** A structured result as `-o json` or `-o yaml` prints it (one document, ending in a newline). */
export async function formatStructured(value: unknown, format: 'json' | 'yaml'): Promise<string> {
  if (format === 'json') return `${JSON.stringify(value, null, 2)}\n`;
  const { stringify } = await import('yaml');
  // Through JSON first, so YAML holds exactly the JSON document (toJSON, no undefined, Maps as JSON has
  // them); lineWidth 0: long strings (rule text, reasons) stay on one line instead of being folded.
  return stringify(JSON.parse(JSON.stringify(value)) as unknown, { lineWidth: 0 });
}

export const isStructured = (format: string): format is 'json' | 'yaml' =>
  format === 'json' || format === 'yaml';
