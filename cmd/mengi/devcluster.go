package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/devcluster"
)

// defaultClusterState is where `mengi dev-cluster` keeps the local cluster.
const defaultClusterState = ".run/cluster"

// devClusterCommand is `mengi dev-cluster up|down|status`: the local control
// plane of package devcluster for people (tests use devcluster/clustertest).
func devClusterCommand() *cli.Command {
	stateFlag := &cli.StringFlag{
		Name: "state-dir", Value: defaultClusterState, EnvVars: []string{"MENGI_CLUSTER_STATE"},
		Usage: "folder with the cluster's certificates, etcd data, kubeconfig, logs and status",
	}
	return &cli.Command{
		Name:  "dev-cluster",
		Usage: "run a local Kubernetes control plane (real API server, fake kwok nodes, no containers)",
		Description: "The binaries come from `make cluster-bin` (tools/devcluster/build.sh). " +
			"Objects are kept in --state-dir between runs; delete it or use `up --fresh` to start empty.",
		Subcommands: []*cli.Command{
			{
				Name:  "up",
				Usage: "start the cluster and stay in the foreground until SIGINT/SIGTERM (or --detach)",
				Flags: []cli.Flag{
					stateFlag,
					&cli.StringFlag{Name: "bin-dir", EnvVars: []string{devcluster.EnvBinDir},
						Usage: "folder with etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok " +
							"(default: tools/devcluster/build.sh --print-dir)"},
					&cli.IntFlag{Name: "port", Usage: "kube-apiserver port on 127.0.0.1 (0: a free one)"},
					&cli.IntFlag{Name: "nodes", Value: 2, Usage: "number of fake nodes"},
					&cli.DurationFlag{Name: "timeout", Value: 3 * time.Minute, Usage: "give up starting after this long"},
					&cli.BoolFlag{Name: "detach", Usage: "run in the background; stop it with `mengi dev-cluster down`"},
					&cli.BoolFlag{Name: "fresh", Usage: "delete --state-dir first (all objects are lost)"},
					&cli.BoolFlag{Name: "verbose", Usage: "log every start step"},
				},
				Action: devClusterUp,
			},
			{
				Name:  "down",
				Usage: "stop the cluster started by `up` (its objects stay in --state-dir)",
				Flags: []cli.Flag{
					stateFlag,
					&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "kill it after this long"},
				},
				Action: func(cc *cli.Context) error {
					dir := cc.String("state-dir")
					if err := devcluster.Down(cc.Context, dir, cc.Duration("timeout")); err != nil {
						return err
					}
					fmt.Println("dev-cluster: stopped")
					return nil
				},
			},
			{
				Name:   "status",
				Usage:  "show the cluster's state, processes and kubeconfig; exit status 1 when it is not ready",
				Flags:  []cli.Flag{stateFlag},
				Action: devClusterStatus,
			},
		},
	}
}

func devClusterUp(cc *cli.Context) error {
	dir, err := filepath.Abs(cc.String("state-dir"))
	if err != nil {
		return err
	}
	if st, err := devcluster.Inspect(dir); err == nil && st.Alive {
		return cli.Exit(fmt.Sprintf("dev-cluster: already running (pid %d); kubeconfig %s", st.PID, st.Kubeconfig), 1)
	}
	if cc.Bool("fresh") {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	bin, err := devcluster.ResolveBinDir(cc.String("bin-dir"))
	if err != nil {
		return err
	}
	if cc.Bool("detach") {
		return detach(cc, dir, bin)
	}
	level := slog.LevelInfo
	if cc.Bool("verbose") {
		level = slog.LevelDebug
	}
	c, err := devcluster.Start(cc.Context, devcluster.Options{
		BinDir: bin, StateDir: dir, APIPort: cc.Int("port"), Nodes: cc.Int("nodes"),
		StartTimeout: cc.Duration("timeout"),
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		return err
	}
	fmt.Printf("dev-cluster: up at %s\nexport KUBECONFIG=%s\n", c.Server(), c.KubeconfigPath())
	<-cc.Context.Done()
	return c.Stop()
}

// detach runs `mengi dev-cluster up` again as a session leader with its
// output in the state folder, and returns once that cluster runs.
func detach(cc *cli.Context, dir, bin string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "supervisor.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(self, "dev-cluster", "up", "--state-dir", dir, "--bin-dir", bin,
		"--port", fmt.Sprint(cc.Int("port")), "--nodes", fmt.Sprint(cc.Int("nodes")),
		"--timeout", cc.Duration("timeout").String(), fmt.Sprintf("--verbose=%t", cc.Bool("verbose")))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dev-cluster: %w", err)
	}
	pid := cmd.Process.Pid
	deadline := time.Now().Add(cc.Duration("timeout") + 10*time.Second)
	for {
		if st, err := devcluster.Inspect(dir); err == nil && st.Alive && st.PID == pid && st.State == "running" {
			fmt.Printf("dev-cluster: up at %s (pid %d, log %s)\nexport KUBECONFIG=%s\n", st.Server, pid, logPath, st.Kubeconfig)
			return nil
		}
		var ws syscall.WaitStatus
		if got, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); got == pid {
			return cli.Exit(fmt.Sprintf("dev-cluster: failed to start (%v); see %s", ws, logPath), 1)
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			return cli.Exit("dev-cluster: not up in time; see "+logPath, 1)
		}
		select {
		case <-cc.Context.Done():
			_ = syscall.Kill(pid, syscall.SIGTERM)
			return cc.Context.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func devClusterStatus(cc *cli.Context) error {
	dir := cc.String("state-dir")
	st, err := devcluster.Inspect(dir)
	if errors.Is(err, devcluster.ErrNotRunning) {
		return cli.Exit("dev-cluster: not running in "+dir, 1)
	}
	if err != nil {
		return err
	}
	if !st.Alive {
		return cli.Exit(fmt.Sprintf("dev-cluster: stopped uncleanly (pid %d gone); run `mengi dev-cluster down` to clean up", st.PID), 1)
	}
	fmt.Printf("state:      %s (pid %d, since %s)\n", st.State, st.PID, st.Started.Format(time.RFC3339))
	fmt.Printf("server:     %s\nkubeconfig: %s\nlogs:       %s\n", st.Server, st.Kubeconfig, st.LogDir)
	for _, p := range st.Processes {
		state := "running"
		if syscall.Kill(p.PID, 0) != nil {
			state = "GONE"
		}
		fmt.Printf("  %-24s pid %-8d %s\n", p.Name, p.PID, state)
	}
	ctx, cancel := context.WithTimeout(cc.Context, 10*time.Second)
	defer cancel()
	if err := devcluster.CheckReady(ctx, st.Kubeconfig); err != nil {
		return cli.Exit(fmt.Sprintf("readyz:     %v", err), 1)
	}
	fmt.Println("readyz:     ok")
	return nil
}
