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

// rollbackLine renders one rollback step.
func rollbackLine(s executor.RollbackStep) string {
	return fmt.Sprintf("%v", s)
}
