// Package schema defines the deployment types of Mengi GitOps, the JSON Schema
// they are checked against, the semantic rules on top of it, and the YAML file
// codec for the one file per deployment that lives in Git.
//
// The same validator serves the API (request bodies), the agent (files read
// from the repository) and `mengi validate` (files in a pull request). Every
// problem is reported as a [FieldError] in the shape of FastAPI/Pydantic v2's
// 422 `detail` entries.
package schema
