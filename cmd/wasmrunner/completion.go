package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// Shell completion: the shells' scripts ask wasmrunner itself what comes
// next (urfave/cli's --generate-bash-completion: commands, subcommands,
// flags), so they stay right as commands and flags change.

// bashCompletion is the bash script: source <(wasmrunner completion bash).
const bashCompletion = `# bash completion of wasmrunner: source <(wasmrunner completion bash)
_wasmrunner_complete() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local args=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
	if [[ $cur == -* ]]; then
		args+=("$cur")
	fi
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "${args[@]}" --generate-bash-completion 2>/dev/null)" -- "$cur"))
}
complete -o default -F _wasmrunner_complete wasmrunner
`

// zshCompletion is the zsh script: source <(wasmrunner completion zsh),
// or saved as _wasmrunner in a directory of $fpath.
const zshCompletion = `#compdef wasmrunner
# zsh completion of wasmrunner: source <(wasmrunner completion zsh)
_wasmrunner_complete() {
	local cur=${words[CURRENT]}
	local -a args opts
	args=("${(@)words[2,CURRENT-1]}")
	if [[ $cur == -* ]]; then
		args+=("$cur")
	fi
	opts=("${(@f)$(${words[1]} "${(@)args}" --generate-bash-completion 2>/dev/null)}")
	if [[ -n ${opts[1]} ]]; then
		compadd -a opts
	else
		_files
	fi
}
compdef _wasmrunner_complete wasmrunner
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script of bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: `completion prints a script that completes wasmrunner's commands and
flags in the shell named.

Examples:
   source <(wasmrunner completion bash)        # in ~/.bashrc
   wasmrunner completion bash > /etc/bash_completion.d/wasmrunner
   wasmrunner completion zsh > "${fpath[1]}/_wasmrunner"
   wasmrunner completion fish > ~/.config/fish/completions/wasmrunner.fish`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError("completion takes one argument: bash, zsh or fish")
			}
			switch shell := c.Args().First(); shell {
			case "bash":
				fmt.Fprint(c.App.Writer, bashCompletion)
			case "zsh":
				fmt.Fprint(c.App.Writer, zshCompletion)
			case "fish":
				script, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				fmt.Fprint(c.App.Writer, script)
			default:
				return usageError(fmt.Sprintf("no completion for the shell %q (bash, zsh or fish)", shell))
			}
			return nil
		},
	}
}
