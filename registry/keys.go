package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/schema"
)

// KeyPrefix starts every API key.
const KeyPrefix = "mc_"

// NewKey makes a new API key: "mc_" and 40 random base-62 characters
// (about 238 bits). Only HashKey(key) is ever stored.
func NewKey() (string, error) {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var b strings.Builder
	b.WriteString(KeyPrefix)
	for range 40 {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", fmt.Errorf("new key: %w", err)
		}
		b.WriteByte(alphabet[n.Int64()])
	}
	return b.String(), nil
}

// HashKey is the stored form of a key: hex SHA-256.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Operator signs commits made by operator commands (keys, clusters).
var Operator = gitstore.Signature{Name: "Mengi operator", Email: "operator@mengi.local"}

// AddKey gives the user with this email a new API key, creating the user
// when there is none, and returns the key (to be shown once) and the user.
func (r *Registry) AddKey(ctx context.Context, name, email string) (string, *schema.User, error) {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email {
		return "", nil, fmt.Errorf("--email %q is not a valid email address", email)
	}
	if strings.TrimSpace(name) == "" {
		return "", nil, fmt.Errorf("--name must not be empty")
	}
	key, stored, err := newStoredKey("mengi keys add", nil)
	if err != nil {
		return "", nil, err
	}
	now := stored.CreatedAt
	var user schema.User
	_, err = r.store.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
		action := "add key"
		if u := v.UserByEmail(email); u != nil {
			user = *u
			user.Keys = append(append([]schema.APIKey(nil), u.Keys...), schema.APIKey{})
		} else {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, err
			}
			user = schema.User{APIVersion: schema.APIVersion, Kind: schema.KindUser, ID: id.String(), Email: email, CreatedAt: now, Keys: []schema.APIKey{{}}}
			action = "create with a key"
		}
		user.Name = name
		user.Keys[len(user.Keys)-1] = stored
		content, err := schema.EncodeRecord(&user)
		if err != nil {
			return nil, err
		}
		return &gitstore.Commit{
			Author:  Operator,
			Message: gitstore.Message(fmt.Sprintf("user %s: %s", email, action), "", gitstore.Trailer{Key: "User-Id", Value: user.ID}),
			Changes: []gitstore.Change{{Path: gitstore.UserPath(user.ID), Content: content, Value: &user}},
		}, nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("add key for %s: %w", email, err)
	}
	return key, &user, nil
}

// newStoredKey makes a new key and its stored form, named name.
func newStoredKey(name string, expires *time.Time) (string, schema.APIKey, error) {
	key, err := NewKey()
	if err != nil {
		return "", schema.APIKey{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return "", schema.APIKey{}, fmt.Errorf("new key id: %w", err)
	}
	return key, schema.APIKey{ID: id.String(), Name: name, Prefix: key[:8], SHA256: HashKey(key),
		CreatedAt: time.Now().UTC().Truncate(time.Second), ExpiresAt: expires}, nil
}

// ErrKeyNotFound is DeleteKey's error for a key the user does not hold.
var ErrKeyNotFound = errors.New("key not found")

// MaxKeys is how many keys one user may hold; CreateKey refuses more with
// ErrTooManyKeys.
const MaxKeys = 100

// ErrTooManyKeys is CreateKey's error for a user who holds MaxKeys keys.
var ErrTooManyKeys = fmt.Errorf("a user holds at most %d keys", MaxKeys)

// CreateKey gives the user a new key named name (expiring at expires, or
// never), in a commit authored by author (the user) with trailers, and
// returns the key, to be shown once, and its stored form.
func (r *Registry) CreateKey(ctx context.Context, userID, name string, expires *time.Time, author gitstore.Signature, trailers ...gitstore.Trailer) (string, schema.APIKey, error) {
	key, stored, err := newStoredKey(name, expires)
	if err != nil {
		return "", schema.APIKey{}, err
	}
	err = r.changeKeys(ctx, userID, author, func(u *schema.User) (string, error) {
		if len(u.Keys) >= MaxKeys {
			return "", ErrTooManyKeys
		}
		u.Keys = append(slices.Clone(u.Keys), stored)
		return "add key " + stored.Prefix + " (" + name + ")", nil
	}, append([]gitstore.Trailer{{Key: "Key-Id", Value: stored.ID}}, trailers...))
	if err != nil {
		return "", schema.APIKey{}, err
	}
	return key, stored, nil
}

// DeleteKey removes the user's key with this id (schema.APIKey.KeyID): it
// stops working as soon as the commit is made. ErrKeyNotFound when the
// user holds no such key.
func (r *Registry) DeleteKey(ctx context.Context, userID, keyID string, author gitstore.Signature, trailers ...gitstore.Trailer) error {
	return r.changeKeys(ctx, userID, author, func(u *schema.User) (string, error) {
		i := slices.IndexFunc(u.Keys, func(k schema.APIKey) bool { return k.KeyID() == keyID })
		if i < 0 {
			return "", ErrKeyNotFound
		}
		gone := u.Keys[i]
		u.Keys = slices.Delete(slices.Clone(u.Keys), i, i+1)
		return "delete key " + gone.Prefix + " (" + gone.Name + ")", nil
	}, append([]gitstore.Trailer{{Key: "Key-Id", Value: keyID}}, trailers...))
}

// changeKeys commits the change edit makes to the user's keys; edit
// returns the subject's action.
func (r *Registry) changeKeys(ctx context.Context, userID string, author gitstore.Signature, edit func(*schema.User) (string, error), trailers []gitstore.Trailer) error {
	_, err := r.store.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
		cur := v.User(userID)
		if cur == nil {
			return nil, fmt.Errorf("user %s is not registered", userID)
		}
		u := *cur
		action, err := edit(&u)
		if err != nil {
			return nil, err
		}
		content, err := schema.EncodeRecord(&u)
		if err != nil {
			return nil, err
		}
		return &gitstore.Commit{
			Author:  author,
			Message: gitstore.Message("user "+u.Email+": "+action, "", append([]gitstore.Trailer{{Key: "User-Id", Value: u.ID}}, trailers...)...),
			Changes: []gitstore.Change{{Path: gitstore.UserPath(u.ID), Content: content, Value: &u}},
		}, nil
	})
	if err != nil {
		return fmt.Errorf("keys of user %s: %w", userID, err)
	}
	return nil
}

// GrantGitAccess lets the user with this email clone and push the
// deployments repository over the server's git endpoint with any of their
// keys (schema.User.GitAccess), in an operator's commit; nothing is
// committed when the user has it already. Later keys keep it: AddKey never
// takes it away.
func (r *Registry) GrantGitAccess(ctx context.Context, email string) (*schema.User, error) {
	var user *schema.User
	_, err := r.store.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
		cur := v.UserByEmail(email)
		if cur == nil {
			return nil, fmt.Errorf("no user with email %s is registered", email)
		}
		user = cur
		if cur.GitAccess {
			return nil, nil
		}
		u := *cur
		u.GitAccess = true
		user = &u
		content, err := schema.EncodeRecord(&u)
		if err != nil {
			return nil, err
		}
		return &gitstore.Commit{
			Author:  Operator,
			Message: gitstore.Message("user "+u.Email+": grant git access", "", gitstore.Trailer{Key: "User-Id", Value: u.ID}),
			Changes: []gitstore.Change{{Path: gitstore.UserPath(u.ID), Content: content, Value: &u}},
		}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("grant git access to %s: %w", email, err)
	}
	return user, nil
}
