import { CountingLineBuffer, LineBuffer, joinTokens } from '../../../src/render/line-buffer.js';

describe('LineBuffer', () => {
  test('joins tokens (nested lists flattened) with single spaces, one line per write', () => {
    const b = new LineBuffer();
    b.write('-A', 'KUBE-SERVICES', ['-m', 'comment', '--comment', '"x y"'], [], '-j', 'ACCEPT');
    b.write('COMMIT');
    expect(b.lineCount).toBe(2);
    expect(b.text()).toBe('-A KUBE-SERVICES -m comment --comment "x y" -j ACCEPT\nCOMMIT\n');
  });

  test('empty buffer renders as empty text; reset clears', () => {
    const b = new LineBuffer();
    expect(b.text()).toBe('');
    b.write('x');
    b.reset();
    expect(b.lineCount).toBe(0);
  });

  test('counting buffer counts without keeping lines', () => {
    const c = new CountingLineBuffer();
    c.write('-A', 'X');
    c.write('-A', 'Y', ['a', 'b']);
    expect(c.lineCount).toBe(2);
  });

  test('joinTokens', () => {
    expect(joinTokens(['a', ['b', ['c']], 'd'])).toBe('a b c d');
  });
});
