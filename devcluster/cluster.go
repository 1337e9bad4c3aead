package devcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Cluster is a running local control plane. Its methods are safe for
// concurrent use.
type Cluster struct {
	opts       Options
	log        *slog.Logger
	binDir     string
	dir        string
	temp       bool // dir was made by Start and Stop removes it
	ports      Ports
	pki        *pki
	server     string
	kubeconfig string
	started    time.Time

	lock    *os.File
	sp      *spawner
	mu      sync.Mutex // guards procs and halting
	procs   []*process
	halting bool // set by halt: no new process may start

	keepLogs  atomic.Bool
	haltOnce  sync.Once
	haltErr   error
	unwatch   chan struct{} // closed by halt: ends the signal watcher
	watchDone chan struct{} // closed when the signal watcher returned
}

// Start starts a cluster and returns once it can run workloads: etcd and
// the API server are healthy, the controller manager and the scheduler serve
// /healthz, the fake nodes are Ready and the default ServiceAccount exists.
// A start that lost a port to another process is retried with new ports.
// On error nothing is left running and the logs are kept; the error names
// the step, its limit and the last log lines of the component concerned.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	opts = opts.withDefaults()
	binDir, err := ResolveBinDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		c, err := start(ctx, opts, binDir)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == 3 || ctx.Err() != nil {
			return nil, err
		}
		opts.Logger.Warn("devcluster: a port was taken, starting again with new ports", "attempt", attempt, "err", err)
	}
}

func start(ctx context.Context, opts Options, binDir string) (_ *Cluster, err error) {
	c := &Cluster{
		opts: opts, log: opts.Logger, binDir: binDir, dir: opts.StateDir, started: time.Now(),
		unwatch: make(chan struct{}), watchDone: make(chan struct{}),
	}
	if err := c.prepare(); err != nil {
		if c.temp {
			_ = os.RemoveAll(c.dir)
		}
		return nil, err
	}
	c.sp = newSpawner()
	c.watchSignals()
	defer func() {
		if err != nil {
			c.keepLogs.Store(true)
			_ = c.halt()
			<-c.watchDone
			err = fmt.Errorf("devcluster: start failed (logs in %s): %w", c.LogDir(), err)
		}
	}()
	if err := c.startAll(ctx); err != nil {
		return nil, err
	}
	if err := c.writeStatus("running"); err != nil {
		return nil, err
	}
	c.log.Info("devcluster: up", "server", c.server, "kubeconfig", c.kubeconfig,
		"took", time.Since(c.started).Round(10*time.Millisecond))
	return c, nil
}

// prepare makes the state folder, its lock, the PKI, the ports, the
// kubeconfigs and the kwok configuration.
func (c *Cluster) prepare() (err error) {
	if c.dir == "" {
		sweepStale()
		if c.dir, err = os.MkdirTemp("", tempPrefix); err != nil {
			return fmt.Errorf("devcluster: %w", err)
		}
		c.temp = true
	} else if c.dir, err = filepath.Abs(c.dir); err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	for _, d := range []string{logDirName, "etcd", "kcm", "scheduler"} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o700); err != nil {
			return fmt.Errorf("devcluster: %w", err)
		}
	}
	if c.lock, err = lockState(c.dir); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			c.lock.Close()
		}
	}()
	if c.pki, err = ensurePKI(filepath.Join(c.dir, "pki")); err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	if c.ports, err = pickPorts(c.opts.APIPort); err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	c.server = "https://" + loopback(c.ports.APIServer)
	c.kubeconfig = filepath.Join(c.dir, kubeconfigFile)
	for file, user := range map[string]string{
		kubeconfigFile: userAdmin, "kcm.kubeconfig": userKCM,
		"scheduler.kubeconfig": userScheduler, "kwok.kubeconfig": userKwok,
	} {
		if err := writeKubeconfig(filepath.Join(c.dir, file), c.server, c.pki.caPEM, c.pki.tokens[user]); err != nil {
			return fmt.Errorf("devcluster: %w", err)
		}
	}
	if err := writeKwokConfig(filepath.Join(c.dir, "kwok.yaml")); err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	return c.writeStatus("starting")
}

// startAll starts the components in order and waits for each.
func (c *Cluster) startAll(ctx context.Context) error {
	step := time.Now()
	done := func(what string) {
		c.log.Debug("devcluster: ready", "step", what, "after", time.Since(step).Round(10*time.Millisecond))
		step = time.Now()
	}
	etcd, err := c.run("etcd", etcdArgs(c.dir, c.ports))
	if err != nil {
		return err
	}
	plain := httpClient(nil)
	if err := waitFor(ctx, "etcd /health", etcdTimeout, []*process{etcd},
		httpCheck(plain, "http://"+loopback(c.ports.Etcd)+"/health", `"health":"true"`)); err != nil {
		return err
	}
	done("etcd")
	api, err := c.run("kube-apiserver", apiserverArgs(c.pki, c.ports))
	if err != nil {
		return err
	}
	cp := []*process{etcd, api}
	if err := waitFor(ctx, "kube-apiserver /readyz", apiserverTimeout, cp,
		httpCheck(httpClient(c.pki.caPEM), c.server+"/readyz", "ok")); err != nil {
		return err
	}
	done("kube-apiserver")
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if err := ensureStorageClass(ctx, cs); err != nil {
		return err
	}
	if err := ensureNodes(ctx, cs, c.opts.Nodes); err != nil {
		return err
	}
	kcm, err := c.run("kube-controller-manager",
		controllerManagerArgs(c.dir, filepath.Join(c.dir, "kcm.kubeconfig"), c.pki, c.ports))
	if err != nil {
		return err
	}
	sched, err := c.run("kube-scheduler", schedulerArgs(c.dir, filepath.Join(c.dir, "scheduler.kubeconfig"), c.ports))
	if err != nil {
		return err
	}
	kwok, err := c.run("kwok", kwokArgs(filepath.Join(c.dir, "kwok.kubeconfig"), filepath.Join(c.dir, "kwok.yaml")))
	if err != nil {
		return err
	}
	steps := []struct {
		name    string
		timeout time.Duration
		proc    *process
		check   func(context.Context) (bool, error)
	}{
		{"kube-controller-manager /healthz", componentTimeout, kcm,
			httpCheck(plain, "https://"+loopback(c.ports.ControllerManager)+"/healthz", "ok")},
		{"kube-scheduler /healthz", componentTimeout, sched,
			httpCheck(plain, "https://"+loopback(c.ports.Scheduler)+"/healthz", "ok")},
		{"kwok nodes Ready", nodesTimeout, kwok, nodesReady(cs, c.opts.Nodes)},
		{"ServiceAccount default/default", saTimeout, kcm, func(ctx context.Context) (bool, error) {
			_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			return err == nil, err
		}},
	}
	for _, s := range steps {
		if err := waitFor(ctx, s.name, s.timeout, append(cp, s.proc), s.check); err != nil {
			return err
		}
		done(s.name)
	}
	return nil
}

// run starts one component from the binary folder and records it.
func (c *Cluster) run(name string, args []string) (*process, error) {
	bin := filepath.Join(c.binDir, name)
	// Under mu, so that halt either sees this process or prevents it.
	c.mu.Lock()
	if c.halting {
		c.mu.Unlock()
		return nil, errors.New("devcluster: stopped while starting")
	}
	p, err := startProcess(c.sp, name, bin, args, c.dir, filepath.Join(c.LogDir(), name+".log"))
	if err == nil {
		c.procs = append(c.procs, p)
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c.log.Debug("devcluster: started", "component", name, "pid", p.pid())
	return p, c.writeStatus("starting")
}

func (c *Cluster) writeStatus(state string) error {
	return writeStatus(c.dir, Status{
		PID: os.Getpid(), State: state, Started: c.started, Server: c.server,
		Kubeconfig: c.kubeconfig, LogDir: c.LogDir(), Ports: c.ports, Processes: c.Processes(),
	})
}

// RESTConfig returns a new admin (system:masters) client configuration.
func (c *Cluster) RESTConfig() *rest.Config {
	return restConfig(c.server, c.pki.caPEM, c.pki.tokens[userAdmin])
}

// KubeconfigPath returns the admin kubeconfig file, valid while the cluster
// runs.
func (c *Cluster) KubeconfigPath() string { return c.kubeconfig }

// Server returns the API server URL, https://127.0.0.1:<port>.
func (c *Cluster) Server() string { return c.server }

// StateDir returns the folder with certificates, data, kubeconfigs and logs.
func (c *Cluster) StateDir() string { return c.dir }

// LogDir returns the folder with one log file per component.
func (c *Cluster) LogDir() string { return filepath.Join(c.dir, logDirName) }

// Ports returns the cluster's loopback ports.
func (c *Cluster) Ports() Ports { return c.ports }

// Processes returns the component processes started so far.
func (c *Cluster) Processes() []ProcessInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ProcessInfo, 0, len(c.procs))
	for _, p := range c.procs {
		out = append(out, ProcessInfo{Name: p.name, PID: p.pid(), Binary: p.cmd.Path})
	}
	return out
}

// KeepLogs makes Stop keep LogDir when it removes a temporary state folder,
// for example because a test failed.
func (c *Cluster) KeepLogs() { c.keepLogs.Store(true) }

// Stop stops every component and waits until they exited, then removes a
// temporary state folder (but LogDir after KeepLogs). It is idempotent, and
// safe to call concurrently with a stop caused by SIGINT or SIGTERM.
func (c *Cluster) Stop() error {
	err := c.halt()
	<-c.watchDone
	return err
}
