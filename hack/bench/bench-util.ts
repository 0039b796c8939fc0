// Helpers the benchmarks share: `--name value` flags and the statistics they print.

/** The value after `--name` on the command line, or the fallback. */
export function benchFlag(name: string, fallback: string): string {
  const argv = process.argv.slice(2);
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}

export const sortedNumbers = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
export const median = (xs: number[]): number => sortedNumbers(xs)[Math.floor(xs.length / 2)] ?? NaN;
/** Nearest-rank p99 (with few samples this is the maximum). */
export const p99 = (xs: number[]): number =>
  sortedNumbers(xs)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.99) - 1)] ?? NaN;
export const ms = (x: number): string => `${x.toFixed(1)} ms`;
