// kube-proxy's LineBuffer idea: rules are written as token lists and joined once, never built by
// repeated string concatenation. Quoting is the caller's job (see iptables/tokens.ts).

/** A token or a nested list of tokens (so a pre-built argument list can be passed as one). */
export type LineToken = string | readonly LineToken[];

export interface LineSink {
  /** Append one line made of the tokens joined by single spaces. */
  write(...tokens: LineToken[]): void;
  /** Lines written so far. */
  readonly lineCount: number;
}

function flattenInto(out: string[], tokens: readonly LineToken[]): void {
  for (const t of tokens) {
    if (typeof t === 'string') out.push(t);
    else flattenInto(out, t);
  }
}

/** Joins tokens into lines and keeps them; `text()` joins all lines with "\n" (each line ends with one). */
export class LineBuffer implements LineSink {
  private readonly lines: string[] = [];

  write(...tokens: LineToken[]): void {
    const flat: string[] = [];
    flattenInto(flat, tokens);
    this.lines.push(flat.join(' '));
  }

  /** Append an already-formed line (e.g. one produced by another buffer). */
  writeLine(line: string): void {
    this.lines.push(line);
  }

  get lineCount(): number {
    return this.lines.length;
  }

  /** The lines, in write order (a copy-free view; do not mutate). */
  get allLines(): readonly string[] {
    return this.lines;
  }

  text(): string {
    return this.lines.length === 0 ? '' : this.lines.join('\n') + '\n';
  }

  reset(): void {
    this.lines.length = 0;
  }
}

/** Counts lines without keeping them: for chains that are unchanged and need not be re-emitted. */
export class CountingLineBuffer implements LineSink {
  private count = 0;

  write(..._tokens: LineToken[]): void {
    this.count++;
  }

  get lineCount(): number {
    return this.count;
  }

  reset(): void {
    this.count = 0;
  }
}

/** Join tokens (nested lists flattened) with single spaces: one rule line. */
export function joinTokens(tokens: readonly LineToken[]): string {
  let flatAlready = true;
  for (const t of tokens) {
    if (typeof t !== 'string') {
      flatAlready = false;
      break;
    }
  }
  if (flatAlready) return (tokens as readonly string[]).join(' ');
  const flat: string[] = [];
  flattenInto(flat, tokens);
  return flat.join(' ');
}
