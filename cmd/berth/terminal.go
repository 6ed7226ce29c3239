package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// streams are a command's standard streams and what berth knows about
// them: whether they are terminals (live progress, confirmation prompts)
// and whether colour is wanted. Tests fill it by hand.
type streams struct {
	In       io.Reader
	Out, Err io.Writer
	InTTY    bool // stdin is a terminal: prompts may be asked
	OutTTY   bool // stdout is a terminal: live redraws are possible
	Color    bool // stdout is a terminal, NO_COLOR is unset and TERM is not dumb
	Width    int  // terminal columns (0: unknown)
	Height   int  // terminal rows (0: unknown)
}

// detectStreams describes the process's real streams. out and errw are the
// writers the app was built with; they count as terminals only when they
// are *os.File terminals.
func detectStreams(in io.Reader, out, errw io.Writer) streams {
	s := streams{In: in, Out: out, Err: errw}
	s.InTTY = isTerminal(in)
	s.OutTTY = isTerminal(out)
	s.Color = s.OutTTY && colorAllowed(os.Getenv)
	if s.OutTTY {
		if f, ok := out.(*os.File); ok {
			if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
				s.Width, s.Height = int(ws.Col), int(ws.Row)
			}
		}
	}
	return s
}

// isTerminal reports whether v is an *os.File open on a terminal. A mode
// check alone is not enough: /dev/null is a character device too.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok || f == nil {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), ioctlReadTermios)
	return err == nil
}

// colorAllowed honours https://no-color.org and TERM=dumb.
func colorAllowed(getenv func(string) string) bool {
	return getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
}
