// Command mengi-server is the API server process of Mengi GitOps: the
// deployments API and its Git store, with the tools that work on the
// store (keys, clusters, bench api, bench store). It links no Kubernetes
// or Helm code, so it is a fifth of mengi's size and needs less memory;
// `mengi serve` runs the same server.
package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/cmd/internal/servercmd"
)

func main() {
	os.Exit(servercmd.Run(newApp(), os.Args))
}

func newApp() *cli.App {
	return servercmd.NewApp("mengi-server", "serve the deployments API of Mengi GitOps on a Git repository",
		append(servercmd.Commands(servercmd.Extensions{}), servercmd.BenchCommand()))
}
