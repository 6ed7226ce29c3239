package main

import (
	"fmt"
	"io"

	"github.com/berth-dev/berth/executor"
)

// reportJournal tells the user what a crashed earlier run (kill -9, power
// loss) left in flight. Nothing more is needed to recover: every object
// carries its ownership record, so the fresh plan converges from what is
// live, without orphans or duplicates.
func reportJournal(w io.Writer, j *executor.Journal) {
	r, err := j.Recover()
	if err != nil {
		fmt.Fprintf(w, "warning: cannot read the apply journal %s: %v\n", j.Path(), err)
		return
	}
	if r != nil {
		fmt.Fprintf(w, "warning: %s\n", r)
	}
}

// rollbackLine renders one rollback step: "ok  delete demo-web (web): undo create".
func rollbackLine(s executor.RollbackStep) string {
	mark := "ok    "
	if s.Err != nil {
		mark = "FAILED"
	}
	line := fmt.Sprintf("%s %s %s", mark, s.Op, s.Ref.Name)
	if s.Instance != "" && s.Instance != s.Ref.Name {
		line += " (" + s.Instance + ")"
	}
	if s.Detail != "" {
		line += ": " + s.Detail
	}
	if s.Err != nil {
		line += ": " + oneLine(s.Err.Error())
	}
	return line
}
