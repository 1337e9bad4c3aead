package devcluster

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// halt stops the cluster once; later calls return the first result.
func (c *Cluster) halt() error {
	c.haltOnce.Do(func() { c.haltErr = c.shutdown() })
	return c.haltErr
}

func (c *Cluster) shutdown() error {
	begin := time.Now()
	close(c.unwatch)
	_ = c.writeStatus("stopping")
	c.mu.Lock()
	c.halting = true
	procs := slices.Clone(c.procs)
	c.mu.Unlock()
	// Everything but etcd at once, then etcd, so that the API server can
	// finish its requests first.
	var wg sync.WaitGroup
	for _, p := range procs {
		if p.name != "etcd" {
			wg.Go(func() { p.stop(c.opts.StopTimeout) })
		}
	}
	wg.Wait()
	for _, p := range procs {
		if p.name == "etcd" {
			p.stop(c.opts.StopTimeout)
		}
	}
	c.sp.close()
	var errs []error
	if err := os.Remove(filepath.Join(c.dir, statusFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	errs = append(errs, c.lock.Close())
	if c.temp {
		errs = append(errs, c.removeTemp())
	}
	c.log.Info("devcluster: stopped", "took", time.Since(begin).Round(10*time.Millisecond))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("devcluster: stop: %w", err)
	}
	return nil
}

// removeTemp removes the temporary state folder, or all of it but the logs
// after KeepLogs.
func (c *Cluster) removeTemp() error {
	if !c.keepLogs.Load() {
		return os.RemoveAll(c.dir)
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.Name() != logDirName {
			errs = append(errs, os.RemoveAll(filepath.Join(c.dir, e.Name())))
		}
	}
	c.log.Warn("devcluster: logs kept", "dir", c.LogDir())
	return errors.Join(errs...)
}

// watchSignals stops the cluster on SIGINT or SIGTERM and then raises the
// signal again, so the program's own handlers, or the default action that
// ends the process, still see it. Signals the process ignores stay ignored.
// The goroutine ends with halt.
func (c *Cluster) watchSignals() {
	var sigs []os.Signal
	for _, s := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		if !signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	ch := make(chan os.Signal, 1)
	if len(sigs) > 0 {
		signal.Notify(ch, sigs...)
	}
	go func() {
		defer close(c.watchDone)
		select {
		case sig := <-ch:
			signal.Stop(ch)
			c.log.Warn("devcluster: stopping on signal", "signal", sig)
			_ = c.halt()
			if s, ok := sig.(syscall.Signal); ok {
				_ = syscall.Kill(os.Getpid(), s)
			}
		case <-c.unwatch:
			signal.Stop(ch)
		}
	}()
}
