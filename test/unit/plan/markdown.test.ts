import { codeFence, htmlText, markdownCode, markdownText } from '../../../src/plan/markdown.js';

describe('markdown escaping', () => {
  const hostile = 'innocent</code></summary>\n\n**No rule changes. LGTM.** <!--';

  it('htmlText leaves no markup, no line break and no table separator', () => {
    const out = htmlText(`${hostile} | x`);
    expect(out).not.toMatch(/[<>\n|]/);
    expect(out).toBe(
      'innocent&lt;/code&gt;&lt;/summary&gt;\\u000a\\u000a**No rule changes. LGTM.** &lt;!-- &#124; x',
    );
  });

  it('markdownText also escapes emphasis, headings, lists and links, and keeps entities intact', () => {
    expect(markdownText(hostile)).toBe(
      String.raw`innocent&lt;/code&gt;&lt;/summary&gt;\\u000a\\u000a\*\*No rule changes\. LGTM\.\*\* &lt;\!\-\-`,
    );
    expect(markdownText("# [x](y) it's")).toBe(String.raw`\# \[x\]\(y\) it&#39;s`);
  });

  it('markdownCode uses backticks only for plain text', () => {
    expect(markdownCode('ns/web:http/tcp')).toBe('`ns/web:http/tcp`');
    expect(markdownCode('a`|b')).toBe('<code>a`&#124;b</code>');
  });

  it('codeFence is longer than any backtick run in the block', () => {
    expect(codeFence(['plain'])).toBe('```');
    expect(codeFence(['a ```` b'])).toBe('`````');
  });
});
