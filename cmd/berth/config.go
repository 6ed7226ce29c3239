package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/urfave/cli/v3"
	"gopkg.in/yaml.v3"
)

// configOptions are the inputs of `berth config`.
type configOptions struct {
	Global *globalOptions
	Format string // yaml (default) or json
	Out    io.Writer
	Err    io.Writer
}

func newConfigCommand(g *globalOptions) *cli.Command {
	o := configOptions{Global: g}
	return &cli.Command{
		Name:  "config",
		Usage: "print the fully resolved stack (interpolated, defaults applied, secrets masked)",
		UsageText: `berth config [-f FILE] [--format yaml|json]

Examples:
   berth config                        # resolved berth.yaml as YAML
   berth config --format json | jq '.instances.web.memory'
   PVE_TOKEN_SECRET=... berth -f examples/proxmox.yaml config`,
		Description: "Like docker compose config: prints the stack after interpolation, short forms\n" +
			"expanded (environment and labels as maps, depends_on with conditions, command as an\n" +
			"argument list, healthcheck test as CMD/CMD-SHELL), defaults filled in and relative\n" +
			"paths made absolute. Secrets (token_secret, password) always print as ********.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "yaml", Usage: "output format: yaml or json", Destination: &o.Format},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if err := noArgs(cmd); err != nil {
				return err
			}
			o.Out, o.Err = cmd.Root().Writer, cmd.Root().ErrWriter
			return runConfig(ctx, o)
		},
	}
}

func runConfig(ctx context.Context, o configOptions) error {
	if o.Format != "yaml" && o.Format != "json" && o.Format != "" {
		return fmt.Errorf("config: unknown --format %q: want yaml or json", o.Format)
	}
	st, err := loadStack(o.Global)
	if err != nil {
		return err
	}
	printWarnings(o.Err, st)
	if o.Format == "json" {
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return fmt.Errorf("config: %w", err)
		}
		return nil
	}
	enc := yaml.NewEncoder(o.Out)
	enc.SetIndent(2)
	if err := enc.Encode(st); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return enc.Close()
}
