package main

import (
	"context"
	"io"

	"github.com/berth-dev/berth/schema"
	"github.com/urfave/cli/v3"
)

// schemaOptions are the inputs of `berth schema`.
type schemaOptions struct {
	Out io.Writer
}

func newSchemaCommand() *cli.Command {
	return &cli.Command{
		Name:  "schema",
		Usage: "print the stack file's JSON Schema (draft 2020-12)",
		UsageText: `berth schema

Examples:
   berth schema > .vscode/berth.schema.json
   berth schema | jq '.$defs.instance.properties | keys'

Editors with the YAML language server validate and complete a stack file that starts with:
   # yaml-language-server: $schema=` + schema.ID,
		Description: "The schema is the one source of truth for the stack file's structure: berth\n" +
			"validates against exactly this document before its semantic checks.",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if err := noArgs(cmd); err != nil {
				return err
			}
			return runSchema(ctx, schemaOptions{Out: cmd.Root().Writer})
		},
	}
}

func runSchema(ctx context.Context, o schemaOptions) error {
	_, err := o.Out.Write(schema.JSON())
	return err
}
