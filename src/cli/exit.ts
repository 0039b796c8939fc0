/** Thrown by a command to end the process with a given exit code (and an optional message on stderr). */
export class CliExit extends Error {
  constructor(
    readonly code: number,
    message = '',
  ) {
    super(message);
    this.name = 'CliExit';
  }
}
