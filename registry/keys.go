package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/mail"
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
func AddKey(ctx context.Context, store *gitstore.Store, name, email string) (string, *schema.User, error) {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email {
		return "", nil, fmt.Errorf("--email %q is not a valid email address", email)
	}
	if strings.TrimSpace(name) == "" {
		return "", nil, fmt.Errorf("--name must not be empty")
	}
	key, err := NewKey()
	if err != nil {
		return "", nil, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	var user schema.User
	_, err = store.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
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
		user.Keys[len(user.Keys)-1] = schema.APIKey{Prefix: key[:8], SHA256: HashKey(key), CreatedAt: now}
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
