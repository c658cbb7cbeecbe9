/** Shell completion scripts, generated from the CLI's own command tree (commander). */
import type { Command } from 'commander';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

interface Node {
  /** Subcommand names from the program down, e.g. ['rotate', 'start']. */
  readonly path: readonly string[];
  readonly command: Command;
}

function walk(command: Command, path: readonly string[] = []): Node[] {
  return [{ path, command }, ...command.commands.flatMap((child) => walk(child, [...path, child.name()]))];
}

function words(command: Command): string[] {
  const options = command.options.flatMap((option) => [option.long, option.short].filter((flag): flag is string => flag !== undefined));
  const choices = command.registeredArguments.flatMap((argument) => argument.argChoices ?? []);
  return [...command.commands.map((child) => child.name()), ...choices, ...options, '--help'];
}

/** Completes subcommands and flags; anything else (env files, paths) falls back to file names. */
function bash(nodes: readonly Node[]): string {
  const paths = nodes.filter((node) => node.path.length > 0).map((node) => `"${node.path.join(' ')}"`);
  const cases = nodes.map((node) => `    "${node.path.join(' ')}") words="${words(node.command).join(' ')}" ;;`);
  return `# stem-rotor completion for bash: source <(stem-rotor completion bash)
_stem_rotor() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" candidate words="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    [[ \${COMP_WORDS[i]} == -* ]] && continue
    candidate="\${path:+$path }\${COMP_WORDS[i]}"
    case "$candidate" in
      ${paths.join('|')}) path="$candidate" ;;
    esac
  done
  case "$path" in
${cases.join('\n')}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _stem_rotor stem-rotor
`;
}

function fishQuote(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function fish(nodes: readonly Node[]): string {
  const lines = ['# stem-rotor completion for fish: stem-rotor completion fish | source'];
  for (const node of nodes) {
    const children = node.command.commands.map((child) => child.name());
    const here = node.path.length === 0 ? '__fish_use_subcommand' : `__fish_seen_subcommand_from ${node.path.at(-1)}${children.length > 0 ? `; and not __fish_seen_subcommand_from ${children.join(' ')}` : ''}`;
    for (const child of node.command.commands) lines.push(`complete -c stem-rotor -f -n ${fishQuote(here)} -a ${child.name()} -d ${fishQuote(child.description())}`);
    if (node.path.length === 0) continue;
    for (const option of node.command.options) {
      const flags = [option.long ? `-l ${option.long.replace(/^--/, '')}` : '', option.short ? `-s ${option.short.replace(/^-/, '')}` : ''].filter(Boolean).join(' ');
      lines.push(`complete -c stem-rotor -n ${fishQuote(`__fish_seen_subcommand_from ${node.path.at(-1)}`)} ${flags}${option.required || option.optional ? ' -r' : ''} -d ${fishQuote(option.description)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export function completionScript(shell: Shell, program: Command): string {
  const nodes = walk(program);
  if (shell === 'fish') return fish(nodes);
  // zsh runs the bash function through its bash compatibility layer
  return shell === 'zsh' ? `# stem-rotor completion for zsh: source <(stem-rotor completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n${bash(nodes).replace(/^# .*\n/, '')}` : bash(nodes);
}
