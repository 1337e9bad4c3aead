package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/mengi-cloud/gitops/schema"
)

// OpenAPI returns the OpenAPI 3.1 document of the API. Request schemas are
// the embedded JSON Schema's $defs, so the document and the validator
// cannot disagree; response schemas are derived from the Go types.
var OpenAPI = sync.OnceValue(func() []byte {
	var root map[string]any
	if err := json.Unmarshal(schema.SchemaJSON, &root); err != nil {
		panic("api: embedded schema: " + err.Error()) // covered by tests
	}
	schemas := rewriteRefs(root["$defs"]).(map[string]any)
	schemas["DeploymentResponse"] = typeSchema(reflect.TypeFor[DeploymentResponse]())
	schemas["EnvironmentVariableResponse"] = typeSchema(reflect.TypeFor[EnvVarResponse]())
	schemas["VolumeResponse"] = typeSchema(reflect.TypeFor[VolumeResponse]())
	schemas["HistoryEntry"] = typeSchema(reflect.TypeFor[HistoryResponse]())
	schemas["KeyResponse"] = typeSchema(reflect.TypeFor[KeyResponse]())
	schemas["NewKeyResponse"] = typeSchema(reflect.TypeFor[NewKeyResponse]())
	schemas["ValidationError"] = map[string]any{
		"type": "object", "required": []string{"loc", "msg", "type"},
		"properties": map[string]any{
			"loc":   map[string]any{"type": "array", "items": map[string]any{"anyOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}},
			"msg":   map[string]any{"type": "string"},
			"type":  map[string]any{"type": "string"},
			"input": map[string]any{},
			"ctx":   map[string]any{"type": "object"},
		},
	}
	schemas["HTTPValidationError"] = map[string]any{"type": "object", "properties": map[string]any{
		"detail": map[string]any{"type": "array", "items": ref("ValidationError")}}}
	schemas["HTTPError"] = map[string]any{"type": "object", "required": []string{"detail"},
		"properties": map[string]any{"detail": map[string]any{"type": "string"}}}

	idParam := map[string]any{"name": "id", "in": "path", "required": true, "schema": map[string]any{"type": "string", "format": "uuid"}}
	keyParam := map[string]any{"name": "id", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}
	doc := map[string]any{
		"openapi":           "3.1.0",
		"jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
		"info": map[string]any{"title": "Mengi GitOps", "version": "1.0.0",
			"description": "Deployments as files in Git: every change is one validated, durable commit."},
		"components": map[string]any{
			"schemas":         schemas,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "An API key starting with mc_"}},
		},
		"security": []any{map[string]any{"bearer": []any{}}},
		"paths": map[string]any{
			"/deployments": map[string]any{
				"post": op("Create Deployment", "DeploymentCreate", "201", ref("DeploymentResponse"), nil, "404", "409", "413", "415"),
				"get": op("List Deployments", "", "200", map[string]any{"type": "array", "items": ref("DeploymentResponse")}, []any{
					query("skip", map[string]any{"type": "integer", "minimum": 0, "default": 0}),
					query("limit", map[string]any{"type": "integer", "minimum": 1, "maximum": MaxLimit, "default": 100}),
					query("cluster_id", map[string]any{"type": "string", "format": "uuid"}),
					query("status", ref("status")),
				}),
			},
			"/deployments/{id}": map[string]any{
				"get":    op("Get Deployment", "", "200", ref("DeploymentResponse"), []any{idParam}, "404"),
				"patch":  op("Update Deployment", "DeploymentUpdate", "200", ref("DeploymentResponse"), []any{idParam}, "404", "409", "413", "415"),
				"delete": op("Delete Deployment", "", "202", ref("DeploymentResponse"), []any{idParam}, "404"),
			},
			"/healthz": map[string]any{
				"get": map[string]any{"summary": "Health", "security": []any{}, "responses": map[string]any{
					"200": map[string]any{"description": "The store is serving; head is the branch's commit",
						"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
							"type": "object", "required": []string{"status", "head"},
							"properties": map[string]any{"status": map[string]any{"const": "ok"}, "head": map[string]any{"type": "string"}}}}}}}},
			},
			"/keys": map[string]any{
				"post": op("Create Key", "KeyCreate", "201", ref("NewKeyResponse"), nil, "409", "413", "415"),
				"get":  op("List Keys", "", "200", map[string]any{"type": "array", "items": ref("KeyResponse")}, nil),
			},
			"/keys/{id}": map[string]any{
				"delete": op("Delete Key", "", "204", nil, []any{keyParam}, "404"),
			},
			"/deployments/{id}/history": map[string]any{
				"get": op("Deployment History", "", "200", map[string]any{"type": "array", "items": ref("HistoryEntry")}, []any{idParam}, "404"),
			},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic("api: openapi: " + err.Error())
	}
	return b
})

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(OpenAPI())
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func query(name string, sch map[string]any) map[string]any {
	return map[string]any{"name": name, "in": "query", "required": false, "schema": sch}
}

// op describes one operation with its success response and error codes.
func op(summary, body, code string, result map[string]any, params []any, errCodes ...string) map[string]any {
	jsonOf := func(s map[string]any) map[string]any {
		return map[string]any{"application/json": map[string]any{"schema": s}}
	}
	success := map[string]any{"description": "Successful Response"}
	if result != nil {
		success["content"] = jsonOf(result)
	}
	responses := map[string]any{
		code:  success,
		"401": map[string]any{"description": "Missing or unknown API key", "content": jsonOf(ref("HTTPError"))},
		"422": map[string]any{"description": "Validation Error", "content": jsonOf(ref("HTTPValidationError"))},
	}
	for _, c := range errCodes {
		responses[c] = map[string]any{"description": http.StatusText(atoi(c)), "content": jsonOf(ref("HTTPError"))}
	}
	o := map[string]any{"summary": summary, "responses": responses}
	if params != nil {
		o["parameters"] = params
	}
	if body != "" {
		o["requestBody"] = map[string]any{"required": true, "content": jsonOf(ref(body))}
	}
	return o
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// rewriteRefs points the schema's internal references at components.
func rewriteRefs(v any) any {
	switch c := v.(type) {
	case map[string]any:
		for k, x := range c {
			if s, ok := x.(string); ok && k == "$ref" {
				c[k] = strings.Replace(s, "#/$defs/", "#/components/schemas/", 1)
				continue
			}
			c[k] = rewriteRefs(x)
		}
	case []any:
		for i, x := range c {
			c[i] = rewriteRefs(x)
		}
	}
	return v
}

// typeSchema derives a response schema from a Go struct: pointers, slices
// and maps are nullable, other fields required.
func typeSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range reflect.VisibleFields(t) { // an embedded struct's fields, as JSON flattens them
		if f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		sch, nullable := fieldSchema(f.Type)
		if nullable {
			sch = map[string]any{"anyOf": []any{sch, map[string]any{"type": "null"}}}
		} else {
			required = append(required, name)
		}
		props[name] = sch
	}
	return map[string]any{"type": "object", "required": required, "properties": props}
}

func fieldSchema(t reflect.Type) (map[string]any, bool) {
	switch {
	case t == reflect.TypeFor[time.Time]():
		return map[string]any{"type": "string", "format": "date-time"}, false
	case t == reflect.TypeFor[schema.AppType]():
		return ref("app_type"), false
	case t == reflect.TypeFor[schema.Phase]():
		return ref("status"), false
	}
	switch t.Kind() {
	case reflect.Pointer:
		s, _ := fieldSchema(t.Elem())
		return s, true
	case reflect.Slice:
		item := map[string]any{}
		switch t.Elem() {
		case reflect.TypeFor[EnvVarResponse]():
			item = ref("EnvironmentVariableResponse")
		case reflect.TypeFor[VolumeResponse]():
			item = ref("VolumeResponse")
		}
		return map[string]any{"type": "array", "items": item}, true
	case reflect.Map:
		return map[string]any{"type": "object"}, true
	case reflect.String:
		return map[string]any{"type": "string"}, false
	case reflect.Bool:
		return map[string]any{"type": "boolean"}, false
	case reflect.Int64, reflect.Int:
		return map[string]any{"type": "integer"}, false
	case reflect.Float64:
		return map[string]any{"type": "number"}, false
	}
	return map[string]any{}, false
}
