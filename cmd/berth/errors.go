package main

import (
	"fmt"
	"io"

	"github.com/berth-dev/berth/manifest"
)

// printError is main's one place that prints a failed command's error.
// Stack file problems print one per line (FILE:LINE:COL: PATH: MESSAGE),
// followed by a count; anything else prints as "berth: message".
func printError(w io.Writer, err error) {
	if fes := manifest.FieldErrors(err); len(fes) > 0 {
		for _, fe := range fes {
			fmt.Fprintln(w, fe.Error())
		}
		noun := "problems"
		if len(fes) == 1 {
			noun = "problem"
		}
		fmt.Fprintf(w, "berth: %s: %d %s\n", fes[0].File, len(fes), noun)
		return
	}
	if err.Error() != "" {
		fmt.Fprintln(w, "berth:", err)
	}
}
