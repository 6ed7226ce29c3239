package main

import (
	"fmt"
	"io"
	"os"

	"github.com/berth-dev/berth/manifest"
)

// loadStack finds and loads the stack file every command works on:
// -f/--file (which the CLI also fills from BERTH_FILE), else berth.yaml,
// then berth.yml in the current directory. Load errors come back as the
// manifest's joined FieldErrors, which main prints one per line.
func loadStack(g *globalOptions) (*manifest.Stack, error) {
	file := g.File
	if file == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("find stack file: %w", err)
		}
		if file, err = manifest.FindFile(wd); err != nil {
			return nil, err
		}
		if rel, ok := relativeToWD(file, wd); ok {
			file = rel
		}
	}
	return manifest.Load(file, manifest.LoadOptions{ProjectName: g.ProjectName, EnvFile: g.EnvFile})
}

func relativeToWD(path, wd string) (string, bool) {
	if len(path) > len(wd)+1 && path[:len(wd)] == wd && path[len(wd)] == os.PathSeparator {
		return path[len(wd)+1:], true
	}
	return path, false
}

// printWarnings writes the stack's load warnings (unset variables ...).
func printWarnings(w io.Writer, st *manifest.Stack) {
	for _, warn := range st.Warnings {
		fmt.Fprintf(w, "berth: warning: %s: %s\n", st.File, warn)
	}
}
