// Package api serves Mengi's deployments API over HTTP: FastAPI-compatible
// JSON bodies and errors, bearer `mc_` keys, tenant isolation. Every change
// is validated by package schema and recorded as one commit by package
// gitstore before the request is answered; the API never talks to a cluster.
package api
