package commands

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// bashCompletion is urfave/cli's autocomplete/bash_autocomplete for bg.
const bashCompletion = `# bash completion for bg: source <(bg completion bash)
_bg_init_completion() {
  COMPREPLY=()
  _get_comp_words_by_ref "$@" cur prev words cword
}

_bg_bash_autocomplete() {
  if [[ "${COMP_WORDS[0]}" != "source" ]]; then
    local cur opts base words
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    if declare -F _init_completion >/dev/null 2>&1; then
      _init_completion -n "=:" || return
    else
      _bg_init_completion -n "=:" || return
    fi
    words=("${words[@]:0:$cword}")
    if [[ "$cur" == "-"* ]]; then
      requestComp="${words[*]} ${cur} --generate-bash-completion"
    else
      requestComp="${words[*]} --generate-bash-completion"
    fi
    opts=$(eval "${requestComp}" 2>/dev/null)
    COMPREPLY=($(compgen -W "${opts}" -- ${cur}))
    return 0
  fi
}

complete -o bashdefault -o default -o nospace -F _bg_bash_autocomplete bg
`

// zshCompletion is urfave/cli's autocomplete/zsh_autocomplete for bg.
const zshCompletion = `#compdef bg
# zsh completion for bg: source <(bg completion zsh)

_bg_zsh_autocomplete() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi

  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}

compdef _bg_zsh_autocomplete bg
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: `Completes commands and flags by asking bg itself (--generate-bash-completion).

Examples:
   source <(bg completion bash)                       # this shell; add to ~/.bashrc to keep
   bg completion zsh > "${fpath[1]}/_bg"               # zsh, then restart the shell
   bg completion fish > ~/.config/fish/completions/bg.fish`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("error: expected one shell: bash, zsh or fish", ExitUsage)
			}
			return writeCompletion(c.App, c.Args().First(), c.App.Writer)
		},
	}
}

func writeCompletion(app *cli.App, shell string, w io.Writer) error {
	switch strings.ToLower(shell) {
	case "bash":
		_, _ = io.WriteString(w, bashCompletion)
	case "zsh":
		_, _ = io.WriteString(w, zshCompletion)
	case "fish":
		script, err := app.ToFishCompletion()
		if err != nil {
			return cli.Exit("error: fish completion: "+err.Error(), ExitError)
		}
		_, _ = io.WriteString(w, script)
	default:
		return cli.Exit(fmt.Sprintf("error: unknown shell %q: want bash, zsh or fish", shell), ExitUsage)
	}
	return nil
}
