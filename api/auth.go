package api

import (
	"net/http"
	"strings"

	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

// authenticate finds the user of the request's bearer key, refusing an
// expired key, and notes the key's use.
func (s *Server) authenticate(r *http.Request) (*schema.User, error) {
	h := r.Header.Get("Authorization")
	scheme, key, ok := strings.Cut(h, " ")
	if h == "" {
		return nil, errorf(http.StatusUnauthorized, "Not authenticated")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(key, registry.KeyPrefix) {
		return nil, errorf(http.StatusUnauthorized, "Invalid authentication credentials: expected 'Authorization: Bearer mc_...'")
	}
	sha := registry.HashKey(strings.TrimSpace(key))
	u := s.reg.UserByKey(sha)
	if u == nil {
		return nil, errorf(http.StatusUnauthorized, "Invalid API key")
	}
	now := s.now()
	for _, k := range u.Keys {
		if k.SHA256 == sha && k.Expired(now) {
			return nil, errorf(http.StatusUnauthorized, "API key expired")
		}
	}
	if ok, retry := s.limits.allow(sha, now); !ok {
		return nil, s.limits.errRateLimited(retry)
	}
	if err := s.reg.KeyUsed(sha, now); err != nil {
		s.log.Warn("noting a key's use failed", "err", err)
	}
	return u, nil
}
