// Escaping for GitHub-flavoured Markdown, as the diff's pull-request comment needs it. Pure.
// Names are validated at the edge (src/model/names.ts), so these never change a real name; they are
// here so that whatever reaches a comment — a file name, a problem message quoting a hostile value —
// stays text: it cannot open or close HTML (`<details>`, `<!--`), end a table row or a code block,
// or start a heading, list or emphasis.

const HTML_ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '|': '&#124;',
};

// eslint-disable-next-line no-control-regex
const LINE_BREAKS_AND_CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

function escapeControls(text: string): string {
  return text.replace(LINE_BREAKS_AND_CONTROLS, (c) =>
    c === '\t' ? ' ' : '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'),
  );
}

const entities = (text: string): string => text.replace(/[&<>"'|]/g, (c) => HTML_ENTITIES[c]!);

/** Text safe inside HTML elements and table cells: entities for markup and '|', one line. */
export function htmlText(text: string): string {
  return entities(escapeControls(text));
}

/**
 * Text safe as Markdown inline content, on one line: Markdown punctuation backslash-escaped, then
 * markup as entities (in that order, so the entities' own '#' stays unescaped).
 */
export function markdownText(text: string): string {
  return entities(escapeControls(text).replace(/[\\`*_{}[\]()#+\-.!~]/g, (c) => '\\' + c));
}

/**
 * Inline code: `text` in backticks when it holds only characters that cannot end or escape a code
 * span or a table cell; otherwise an HTML <code> element with the text escaped.
 */
export function markdownCode(text: string): string {
  return /^[A-Za-z0-9 ._:/()+=@,-]+$/.test(text) ? `\`${text}\`` : `<code>${htmlText(text)}</code>`;
}

/** A fence for a code block holding `lines`: longer than any run of backticks inside, so no line can close it. */
export function codeFence(lines: readonly string[]): string {
  let longest = 0;
  for (const line of lines)
    for (const run of line.match(/`+/g) ?? []) longest = Math.max(longest, run.length);
  return '`'.repeat(Math.max(3, longest + 1));
}
