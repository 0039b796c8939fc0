// `portway completion bash|zsh`: a completion script generated from the command definitions (commander's
// commands and options), so a new command or flag is completed without anyone editing the script.
// Completes command names, each command's flags, the fixed values of flags that have them (-o text…),
// and file names after flags that take paths. Pure: program in, script text out.
import type { Command, Option } from 'commander';

export const COMPLETION_SHELLS = ['bash', 'zsh'] as const;
export type CompletionShell = (typeof COMPLETION_SHELLS)[number];

/** Flags whose values are files or directories. */
const PATH_FLAGS = new Set(['--filename', '--manifests', '--config', '--kubeconfig', '--before', '--after']);

interface FlagSpec {
  names: string[];
  description: string;
  takesValue: boolean;
  variadic: boolean;
  choices: string[];
  path: boolean;
}

interface CommandSpec {
  /** The words naming it: "status", or "config convert" for a subcommand. */
  name: string;
  description: string;
  flags: FlagSpec[];
  /** Fixed values of the first positional argument (completion's shell), or a group's subcommands. */
  argumentChoices: string[];
  /** A group of subcommands (config): its words are followed by one of them. */
  group: boolean;
}

function flagSpec(o: Option): FlagSpec {
  return {
    names: [o.short, o.long].filter((n): n is string => n !== undefined),
    description: o.description,
    takesValue: o.required || o.optional,
    variadic: o.variadic,
    choices: o.argChoices ?? [],
    path: o.long !== undefined && PATH_FLAGS.has(o.long),
  };
}

/** Every command, and one level of subcommands (`config convert`) after their group. */
function commandSpecs(program: Command, prefix = ''): CommandSpec[] {
  return program.commands.flatMap((c) => {
    const group = c.commands.length > 0;
    const spec: CommandSpec = {
      name: `${prefix}${c.name()}`,
      description: c.description(),
      flags: [...c.options.filter((o) => !o.hidden).map(flagSpec), helpFlag],
      argumentChoices: group
        ? c.commands.map((sub) => sub.name())
        : (c.registeredArguments[0]?.argChoices ?? []),
      group,
    };
    return prefix === '' && group ? [spec, ...commandSpecs(c, `${c.name()} `)] : [spec];
  });
}

const helpFlag: FlagSpec = {
  names: ['-h', '--help'],
  description: 'display help',
  takesValue: false,
  variadic: false,
  choices: [],
  path: false,
};

/** A word list for bash's compgen -W: flag names and values are plain words (no quoting needed). */
const words = (list: string[]): string => list.join(' ');

function bashScript(program: Command): string {
  const specs = commandSpecs(program);
  const top = [...specs.filter((s) => !s.name.includes(' ')).map((s) => s.name), '--version', '--help'];
  const groups = specs.filter((s) => s.group).map((s) => s.name);
  // After a group's word, the next word (its subcommand) belongs to the command's name.
  const groupStep = groups.length > 0 ? ` case "$cmd" in ${groups.join('|')}) continue ;; esac;` : '';
  const cases = specs.map((s) => {
    const valueCases = s.flags
      .filter((f) => f.takesValue)
      .map((f) => {
        const reply =
          f.choices.length > 0
            ? `COMPREPLY=( $(compgen -W "${words(f.choices)}" -- "$cur") )`
            : f.path
              ? 'COMPREPLY=( $(compgen -f -- "$cur") )'
              : 'COMPREPLY=()';
        return `        ${f.names.join('|')}) ${reply}; return 0 ;;`;
      });
    const args =
      s.argumentChoices.length > 0
        ? `COMPREPLY=( $(compgen -W "${words(s.argumentChoices)}" -- "$cur") )`
        : 'COMPREPLY=()';
    return [
      `    "${s.name}")`,
      ...(valueCases.length > 0 ? ['      case "$prev" in', ...valueCases, '      esac'] : []),
      `      if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "${words(s.flags.flatMap((f) => f.names))}" -- "$cur") ); else ${args}; fi`,
      '      return 0 ;;',
    ].join('\n');
  });
  return `# portway completion for bash, generated from portway's command definitions.
# Load it with: source <(portway completion bash)
_portway() {
  local cur prev cmd i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      -*) ;;
      *) if [[ -z "$cmd" ]]; then cmd="\${COMP_WORDS[i]}";${groupStep} else cmd="$cmd \${COMP_WORDS[i]}"; fi; break ;;
    esac
  done
  if [[ -z "$cmd" ]]; then
    COMPREPLY=( $(compgen -W "${words(top)}" -- "$cur") )
    return 0
  fi
  case "$cmd" in
${cases.join('\n')}
  esac
  COMPREPLY=()
}
# -o default: where nothing is offered (a path argument), bash completes file names.
complete -o default -F _portway portway
`;
}

/** Text inside a zsh single-quoted _arguments spec: no quote, and no bracket or colon that ends a field. */
const zshText = (s: string): string =>
  s.replace(/'/g, '').replace(/[[\]]/g, '').replace(/:/g, ' -').replace(/\s+/g, ' ');

function zshFlag(f: FlagSpec): string {
  const exclusive = f.names.length > 1 ? `(${f.names.join(' ')})` : '';
  const value = f.takesValue
    ? `:value:${f.choices.length > 0 ? `(${f.choices.join(' ')})` : f.path ? '_files' : ' '}`
    : '';
  const repeat = f.variadic ? '*' : '';
  const spec = (name: string) =>
    `'${repeat}${repeat ? '' : exclusive}${name}[${zshText(f.description)}]${value}'`;
  return f.names.map(spec).join(' ');
}

function zshScript(program: Command): string {
  const specs = commandSpecs(program);
  const topLevel = specs.filter((s) => !s.name.includes(' '));
  const commands = topLevel.map((s) => `    '${s.name}:${zshText(s.description)}'`);
  const argumentsOf = (s: CommandSpec): string => {
    const args = s.argumentChoices.length > 0 ? ` '1:${s.name}:(${s.argumentChoices.join(' ')})'` : '';
    return `_arguments ${s.flags.map(zshFlag).join(' ')}${args}`;
  };
  const cases = topLevel.map((s) => {
    if (!s.group) return `    ${s.name}) ${argumentsOf(s)} ;;`;
    // A group: its subcommand first, then that subcommand's flags (the words shifted once more).
    const subs = specs.filter((sub) => sub.name.startsWith(`${s.name} `));
    return [
      `    ${s.name})`,
      `      if (( CURRENT == 2 )); then _values 'subcommand' ${s.argumentChoices.join(' ')}; return; fi`,
      '      local sub=$words[2]',
      '      shift words',
      '      (( CURRENT-- ))',
      '      case $sub in',
      ...subs.map((sub) => `        ${sub.name.slice(s.name.length + 1)}) ${argumentsOf(sub)} ;;`),
      '      esac ;;',
    ].join('\n');
  });
  return `#compdef portway
# portway completion for zsh, generated from portway's command definitions.
# Load it with: source <(portway completion zsh)   (or save it as _portway in a directory of $fpath)
_portway() {
  local -a commands
  commands=(
${commands.join('\n')}
  )
  if (( CURRENT == 2 )); then
    _describe -t commands 'portway command' commands
    _arguments '--version[print the portway version]' '(-h --help)'{-h,--help}'[display help]'
    return
  fi
  local cmd=$words[2]
  shift words
  (( CURRENT-- ))
  case $cmd in
${cases.join('\n')}
  esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _portway "$@"
else
  compdef _portway portway
fi
`;
}

export function completionScript(program: Command, shell: CompletionShell): string {
  return shell === 'bash' ? bashScript(program) : zshScript(program);
}
