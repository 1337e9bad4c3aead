package render

import (
	"errors"
	"fmt"
)

// The reasons of an *Error. They are the typed failure reasons of the agent's
// reconcile step (see the architecture notes): the agent writes the reason to
// status.reason and the error's message to status.error_message.
const (
	// ReasonInvalidSpec: the deployment asks for something that cannot be
	// rendered, or the chart's values.schema.json refuses its values. The
	// user has to change the deployment.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonRenderFailed: a chart template failed or produced something
	// that is not a Kubernetes object.
	ReasonRenderFailed = "RenderFailed"
	// ReasonChartUnavailable: the chart of a Helm deployment could not be
	// fetched, verified or loaded.
	ReasonChartUnavailable = "ChartUnavailable"
)

// Error is every error Render and Manifests return (test with errors.As).
// Its message starts with the deployment field at fault, e.g.
// "helm_chart_version: version 9.9.9 of chart \"grafana\" is not in
// https://grafana.github.io/helm-charts/index.yaml (newest: 8.5.1, 8.5.0)".
type Error struct {
	// Reason is ReasonInvalidSpec, ReasonRenderFailed or
	// ReasonChartUnavailable.
	Reason string
	// Field is the spec field at fault, named as in the API
	// (helm_chart_version, custom_values_yaml, config.ingress, ...); empty
	// when no single field is (a bug in the built-in chart, say).
	Field string
	// Temporary reports that the same render may succeed later without a
	// change to the deployment: a network error, a timeout, a 5xx answer.
	Temporary bool
	// Err is the underlying problem.
	Err error
}

// Error renders the problem as "field: message".
func (e *Error) Error() string {
	if e.Field == "" {
		return e.Err.Error()
	}
	return e.Field + ": " + e.Err.Error()
}

// Unwrap returns the underlying problem, so errors.Is sees through an Error
// (context.Canceled, for example).
func (e *Error) Unwrap() error { return e.Err }

func invalidSpec(field, format string, args ...any) *Error {
	return &Error{Reason: ReasonInvalidSpec, Field: field, Err: fmt.Errorf(format, args...)}
}

func renderFailed(field string, err error) *Error {
	return &Error{Reason: ReasonRenderFailed, Field: field, Err: err}
}

func unavailable(field string, err error) *Error {
	return &Error{Reason: ReasonChartUnavailable, Field: field, Err: err}
}

// temporary marks a chart fetch failure that may go away by itself.
func temporary(field string, err error) *Error {
	return &Error{Reason: ReasonChartUnavailable, Field: field, Temporary: true, Err: err}
}

// asError returns err as an *Error, wrapping errors of unknown kind (a
// cancelled context, say) as a temporary ChartUnavailable for field.
func asError(field string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return temporary(field, err)
}
