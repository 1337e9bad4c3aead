package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/fetchguard"
)

// fetchFlags configure the guard of chart fetches, shared by `agent`, `up`
// and `render`.
func fetchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "allow-fetch", EnvVars: []string{"MENGI_ALLOW_FETCH"},
			Usage: "`CIDR|host` that chart fetches may reach although it is not public (loopback, private, link-local, ...); repeatable. " +
				"E.g. 10.20.0.0/16, charts.internal, or 127.0.0.1/32 for a chart repository on this machine"},
		&cli.StringFlag{Name: "fetch-credentials", EnvVars: []string{"MENGI_FETCH_CREDENTIALS"},
			Usage: "YAML or JSON `FILE` mapping URL prefixes (https://host[:port]/path, oci://host/path) to {username, password} or {token} for private chart repositories and registries"},
		&cli.StringFlag{Name: "fetch-proxy", EnvVars: []string{"MENGI_FETCH_PROXY"},
			Usage: "http:// `URL` of a proxy for chart fetches (HTTP_PROXY and HTTPS_PROXY are ignored)"},
	}
}

// fetchOptions reads the fetch flags. A credentials file that others may
// read is used, with a warning.
func fetchOptions(c *cli.Context, log *slog.Logger) (fetchguard.Options, error) {
	opts := fetchguard.Options{Allow: c.StringSlice("allow-fetch"), Proxy: c.String("fetch-proxy"), Logger: log}
	path := c.String("fetch-credentials")
	if path == "" {
		return opts, nil
	}
	creds, err := fetchguard.LoadCredentials(path)
	if err != nil {
		return opts, err
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the fetch credentials file may be read by other users; chmod 600 it", "path", path, "mode", fmt.Sprintf("%#o", fi.Mode().Perm()))
	}
	opts.Credentials = creds
	return opts, nil
}
