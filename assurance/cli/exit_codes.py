"""Exit codes of the `assurance` command, for scripts and CI gates."""

EXIT_OK = 0
# the command ran and its answer is no: `run --fail-on` tripped its gate, `verify` found a damaged bundle
EXIT_FAILED = 1
# a problem the user can fix (an AssuranceError: setting, policy, registry, evidence, input), one line on stderr
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
