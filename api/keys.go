package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

// KeyResponse describes one of the caller's API keys; the key itself is
// never shown again after it was made.
type KeyResponse struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// NewKeyResponse is the answer to POST /keys: KeyResponse's fields and the
// key, shown this once.
type NewKeyResponse struct {
	KeyResponse
	Key string `json:"key"`
}

func (s *Server) keyResponse(k schema.APIKey) KeyResponse {
	return KeyResponse{ID: k.KeyID(), Name: k.Name, Prefix: k.Prefix, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt,
		LastUsedAt: s.reg.LastUsed(k.SHA256)}
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, user *schema.User) error {
	body, err := readJSONBody(w, r)
	if err != nil {
		return err
	}
	kc, errs := schema.DecodeKeyCreate(body, s.now())
	if errs != nil {
		return validation(errs)
	}
	var expires *time.Time
	if kc.ExpiresAt != nil {
		t := kc.ExpiresAt.UTC().Truncate(time.Second)
		expires = &t
	}
	key, stored, err := s.reg.CreateKey(r.Context(), user.ID, kc.Name, expires, author(user), requestTrailer(r))
	if errors.Is(err, registry.ErrTooManyKeys) {
		return errorf(http.StatusConflict, fmt.Sprintf("You hold %d keys, the most a user may; delete one first", registry.MaxKeys))
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, NewKeyResponse{KeyResponse: s.keyResponse(stored), Key: key})
	return nil
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, user *schema.User) error {
	out := make([]KeyResponse, len(user.Keys))
	for i, k := range user.Keys {
		out[i] = s.keyResponse(k)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request, user *schema.User) error {
	err := s.reg.DeleteKey(r.Context(), user.ID, r.PathValue("id"), author(user), requestTrailer(r))
	if errors.Is(err, registry.ErrKeyNotFound) {
		return errorf(http.StatusNotFound, "Key not found")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
