// Command berth brings whole environments of containers and VMs up and down
// from one version-controlled YAML stack file.
package main

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/urfave/cli/v3"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// globalOptions are the flags every command shares.
type globalOptions struct {
	File        string // -f/--file, BERTH_FILE
	ProjectName string // -p/--project-name, BERTH_PROJECT_NAME
	EnvFile     string // --env-file
	StateDir    string // --state-dir, BERTH_STATE_DIR
}

// exitStatus is an error that carries a specific process exit status (for
// example 2 from `plan --detailed-exitcode`). An empty message prints nothing.
type exitStatus struct {
	code int
	msg  string
}

func (e exitStatus) Error() string { return e.msg }

func newApp(stdout, stderr io.Writer) *cli.Command {
	g := &globalOptions{}
	return &cli.Command{
		Name:    "berth",
		Usage:   "bring stacks of containers and VMs up and down from one YAML file",
		Version: version,
		Writer:  stdout, ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "stack file (default: berth.yaml, then berth.yml)", Sources: cli.EnvVars("BERTH_FILE"), Destination: &g.File},
			&cli.StringFlag{Name: "project-name", Aliases: []string{"p"}, Usage: "stack name (default: the file's name: field, else its directory name)", Sources: cli.EnvVars("BERTH_PROJECT_NAME"), Destination: &g.ProjectName},
			&cli.StringFlag{Name: "env-file", Usage: "file of VAR=value lines for interpolation (default: .env next to the stack file)", Destination: &g.EnvFile},
			&cli.StringFlag{Name: "state-dir", Usage: "where locks, apply journals and the backend record live (default: $XDG_STATE_HOME/berth, else /var/lib/berth as root, else ~/.local/state/berth)", Sources: cli.EnvVars("BERTH_STATE_DIR"), Destination: &g.StateDir},
		},
		Commands: []*cli.Command{
			newValidateCommand(g),
			newConfigCommand(g),
			newSchemaCommand(),
			newPlanCommand(g),
			newUpCommand(g),
			newDownCommand(g),
			newPsCommand(g),
			newGraphCommand(g),
			newExecCommand(g),
			newLogsCommand(g),
		},
	}
}

func main() {
	sigs, unsubscribe := notifySignals()
	ctx, in := watchSignals(context.Background(), sigs, os.Stderr, os.Exit)
	err := newApp(os.Stdout, os.Stderr).Run(ctx, os.Args)
	in.Stop()
	unsubscribe()
	if err != nil {
		code := 1
		var es exitStatus
		if errors.As(err, &es) {
			code = es.code
		}
		if in.Interrupted() && code == 1 {
			code = interruptExit
		}
		printError(os.Stderr, err)
		os.Exit(code)
	}
}
