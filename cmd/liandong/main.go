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
	"syscall"
)

const usage = `liandong — the data-exchange node of the Beijing–Tianjin–Hebei National Technology Innovation Centre

Usage:
  liandong serve --config FILE            run a node (every key also settable as LIANDONG_…)
  liandong serve --dev --data DIR [--http 127.0.0.1:8700] [--centre tianjin]
                                          run a one-centre node, creating keys, bundle and DIR/admin.token
  liandong demo [--dir DIR] [--base-port 8700]
                                          the four-centre federation on loopback with sample catalogues
  liandong bench [write] [batch] [floor] [read] [converge] [catchup] [fanout] [--clients 1,16,64] [--duration 5s]
                 [--records 100000] [--json]
                                          measure nodes on loopback (default: write and read, one replica);
                                          floor is write's load against a server that only answers;
                                          batch is write through POST /v1/batch, --batch 100 records a request
  liandong keygen --out FILE [--prefix ID]
  liandong token issue --key FILE --centre ID --federation ID --sub NAME --scope "read pii" [--ttl 720h]
  liandong federation init|show ...       build or show a trust bundle (see 'liandong federation -h')
  liandong centre replicas|add-replica|remove-replica --node URL --token FILE ...
                                          show or change a centre's raft voters
  liandong status [--node URL] [--token FILE] [--json]
                                          the federation at a glance; exit 1 when something needs attention
  liandong import --node URL --token FILE [--catalogue C] [--dry-run] FILE
                                          records from CSV (UTF-8/GB18030, Chinese headers) or JSON Lines
  liandong export --node URL [--token FILE] --catalogue C [--format csv|xlsx|jsonl] [--out FILE]

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
		err = cmdToken(args[1:], stdout)
	case "federation":
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
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "liandong %s: %v\n", args[0], err)
			return 2
		}
		fmt.Fprintf(stderr, "liandong %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// usageError is a mistake in the command line itself.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
