package api

import (
	"net/http"
	"strings"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

// authenticate finds the user of the request's bearer key.
func authenticate(store *gitstore.Store, r *http.Request) (*schema.User, error) {
	h := r.Header.Get("Authorization")
	scheme, key, ok := strings.Cut(h, " ")
	if h == "" {
		return nil, errorf(http.StatusUnauthorized, "Not authenticated")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(key, registry.KeyPrefix) {
		return nil, errorf(http.StatusUnauthorized, "Invalid authentication credentials: expected 'Authorization: Bearer mc_...'")
	}
	rec := store.UserByKey(registry.HashKey(strings.TrimSpace(key)))
	if rec == nil || rec.User() == nil {
		return nil, errorf(http.StatusUnauthorized, "Invalid API key")
	}
	return rec.User(), nil
}
