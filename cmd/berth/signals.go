package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// interruptExit is the exit status of a run ended by SIGINT/SIGTERM
// (128 + SIGINT), as shells report it.
const interruptExit = 130

// interrupts turns SIGINT/SIGTERM into berth's two-step stop: the first
// signal cancels the context, so the executor stops launching work and
// rolls back in order; a second one exits at once.
type interrupts struct {
	signalled atomic.Bool
	stop      func()
}

// watchSignals starts watching sigs (fed by signal.Notify in main, by the
// test otherwise). exit is os.Exit outside tests.
func watchSignals(parent context.Context, sigs <-chan os.Signal, stderr io.Writer, exit func(int)) (context.Context, *interrupts) {
	ctx, cancel := context.WithCancel(parent)
	in := &interrupts{}
	done := make(chan struct{})
	in.stop = func() {
		select {
		case <-done:
		default:
			close(done)
		}
		cancel()
	}
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		in.signalled.Store(true)
		fmt.Fprintln(stderr, "\nberth: interrupted: stopping and rolling back what this run did (interrupt again to abort at once)")
		cancel()
		select {
		case <-sigs:
		case <-done:
			return
		}
		fmt.Fprintln(stderr, "\nberth: aborted: the stack may be left half-applied; the next `berth up` converges it")
		exit(interruptExit)
	}()
	return ctx, in
}

// Interrupted reports whether a signal arrived.
func (in *interrupts) Interrupted() bool { return in.signalled.Load() }

// Stop ends the watch and cancels the context.
func (in *interrupts) Stop() { in.stop() }

// notifySignals subscribes to SIGINT and SIGTERM.
func notifySignals() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	return ch, func() { signal.Stop(ch) }
}
