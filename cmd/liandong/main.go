// Command liandong runs and administers a liandong node: serve, demo, keygen,
// token issue, federation init/sign/show, status.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `liandong — the data-exchange node of the Beijing–Tianjin–Hebei National Technology Innovation Centre

Usage:
  liandong serve --config FILE            run a node (every key also settable as LIANDONG_…)
  liandong serve --dev --data DIR [--http 127.0.0.1:8700] [--centre tianjin]
                                          run a one-centre node, creating keys, bundle and DIR/admin.token
  liandong demo [--dir DIR] [--base-port 8700] [--replicas 1|3|5]
                                          the four-centre federation on loopback with sample catalogues
  liandong bench [write] [batch] [floor] [read] [converge] [catchup] [fanout] [--clients 1,16,64] [--duration 5s]
                 [--records 100000] [--json]
                                          measure nodes on loopback (default: write and read, one replica);
                                          floor is write's load against a server that only answers;
                                          batch is write through POST /v1/batch, --batch 100 records a request
  liandong keygen --out FILE [--prefix ID] [--p2p]
                                          a signing key (and FILE.pub, its public half), or with --p2p a libp2p identity
  liandong token issue --sub NAME --scope "read pii" (--data DIR | --key FILE --bundle FILE) [--ttl 720h] [--out FILE]
  liandong federation init|member|add-centre|remove-centre|add-peer|renew|rotate-key|revoke|signers|sign|publish|show ...
                                          build, sign, publish or show a trust bundle (see 'liandong federation -h')
  liandong centre replicas|add-replica|remove-replica|purge-origin|audit|backup --node URL --token FILE ...
                                          show or change a centre's raft voters, withdraw a removed
                                          centre's records, export the audit log, back up a replica's
                                          state file (see 'liandong centre -h')
  liandong centre restore --from FILE (--config FILE | --data DIR --centre ID)
                                          lay a backup into an empty data directory
  liandong status [--node URL] [--token FILE] [--json] [--max-lag 2m]
                                          the federation at a glance; exit 1 when something needs attention
  liandong import --node URL --token FILE [--catalogue C] [--format csv|xlsx|jsonl] [--dry-run] FILE
                                          records from CSV (UTF-8/GB18030), XLSX (Chinese headers) or JSON Lines
  liandong export --node URL [--token FILE] --catalogue C [--format csv|xlsx|jsonl] [--out FILE]

LIANDONG_NODE and LIANDONG_TOKEN_FILE stand in for --node and --token in status, import, export,
centre and federation publish.

Run 'liandong COMMAND -h' for the flags of a command.
`

func main() {
	tuneGC()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "keygen":
		err = cmdKeygen(args[1:], stdout)
	case "token":
		if len(args) > 1 && isHelp(args[1]) {
			// token has one subcommand; its flags are the help.
			fmt.Fprintln(stderr, tokenUsage)
			err = cmdToken([]string{"issue", "-h"}, stdout)
			break
		}
		err = cmdToken(args[1:], stdout)
	case "federation":
		if len(args) > 1 && args[1] == "publish" {
			args = append(args[:2:2], withNodeEnv(args[2:])...)
		}
		err = cmdFederation(args[1:], stdout)
	case "centre":
		err = cmdCentre(ctx, args[1:], stdout)
	case "status":
		err = cmdStatus(ctx, args[1:], stdout, stderr)
	case "import":
		err = cmdImport(ctx, args[1:], stdout, stderr)
	case "export":
		err = cmdExport(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "liandong: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "liandong %s: %v\n", args[0], err)
		return exitCode(err)
	}
	return 0
}

const tokenUsage = `liandong token issue --sub NAME [--scope "read pii"] (--data DIR | --key FILE --bundle FILE) [--ttl 720h] [--out FILE]
    a token for a partner system, signed by the centre's token key`

func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "help" }

// withNodeEnv puts --node $LIANDONG_NODE and --token $LIANDONG_TOKEN_FILE,
// where set, before args, as the other client commands default to them;
// package flag keeps the last value, so flags on the command line win.
func withNodeEnv(args []string) []string {
	var pre []string
	if v := os.Getenv("LIANDONG_NODE"); v != "" {
		pre = append(pre, "--node", v)
	}
	if v := os.Getenv("LIANDONG_TOKEN_FILE"); v != "" {
		pre = append(pre, "--token", v)
	}
	return append(pre, args...)
}

// Exit statuses. exitMistake is promised by deploy/README.md and relied on by
// the systemd unit (RestartPreventExitStatus=2): restarting cannot mend a
// mistake in the command line or the configuration, so a supervisor must stop.
// exitShutdownHung is the shutdown watchdog's: deliberately not exitMistake,
// so that a node that hung while stopping is restarted like any failure.
const (
	exitFailure      = 1
	exitMistake      = 2
	exitShutdownHung = 3
)

// exitCode maps a command's error to the process exit status.
func exitCode(err error) int {
	var ue usageError
	var ce configError
	if errors.As(err, &ue) || errors.As(err, &ce) || isFlagError(err) {
		return exitMistake
	}
	return exitFailure
}

// isFlagError reports whether err is one of package flag's parse errors. They
// are plain errors.New values, so they are told by the texts flag.FlagSet.failf
// writes (Go 1.26); TestExitStatus notices if those change.
func isFlagError(err error) bool {
	for _, p := range []string{
		"flag provided but not defined: ",
		"bad flag syntax: ",
		"flag needs an argument: ",
		"invalid value ",
		"invalid boolean value ",
		"invalid boolean flag ",
	} {
		if strings.HasPrefix(err.Error(), p) {
			return true
		}
	}
	return false
}

// usageError is a mistake in the command line itself.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// configError is a mistake in the configuration: the file, the LIANDONG_…
// variables or the flags that override them. Like a usageError it exits 2.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
