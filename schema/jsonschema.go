package schema

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// SchemaJSON is the JSON Schema (draft 2020-12) of request bodies and
// deployment files. Its $defs hold DeploymentCreate, DeploymentUpdate and
// DeploymentFile; the OpenAPI document and editors use it as it is.
//
//go:embed deployment.schema.json
var SchemaJSON []byte

const schemaURL = "https://mengi.cloud/schemas/deployment.json"

// compiled holds the schemas compiled once from SchemaJSON. They are
// read-only after compilation and safe for concurrent use.
type compiled struct {
	create, update, file, keyCreate *jsonschema.Schema
}

var compiledSchemas = sync.OnceValues(func() (*compiled, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(SchemaJSON))
	if err != nil {
		return nil, fmt.Errorf("parse embedded schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.RegisterFormat(timestampFormat)
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("add embedded schema: %w", err)
	}
	var out compiled
	for _, s := range []struct {
		def string
		dst **jsonschema.Schema
	}{{"DeploymentCreate", &out.create}, {"DeploymentUpdate", &out.update}, {"DeploymentFile", &out.file}, {"KeyCreate", &out.keyCreate}} {
		sch, err := c.Compile(schemaURL + "#/$defs/" + s.def)
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", s.def, err)
		}
		*s.dst = sch
	}
	return &out, nil
})

// schemas returns the compiled schemas. The embedded schema is part of the
// binary and covered by tests, so failing to compile it is a build defect.
func schemas() *compiled {
	c, err := compiledSchemas()
	if err != nil {
		panic(err)
	}
	return c
}

// timestampFormat is "date-time" as Go reads it. The validator's own check
// accepts RFC 3339 forms that time.Time cannot decode or encode (a leap
// second, a lowercase 't', an offset of 24 hours), which would otherwise
// pass the schema and then fail to decode with no field to point at.
var timestampFormat = &jsonschema.Format{Name: "date-time", Validate: func(v any) error {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		var pe *time.ParseError
		if errors.As(err, &pe) && pe.Message != "" {
			return errors.New(strings.TrimPrefix(pe.Message, ": "))
		}
		return errors.New("expected YYYY-MM-DDTHH:MM:SS, optional fraction, then Z or an offset such as +02:00")
	}
	if _, err := t.MarshalText(); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "Time.MarshalText: "))
	}
	return nil
}}
