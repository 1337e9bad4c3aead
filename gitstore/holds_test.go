package gitstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/schema"
)

// TestHoldsSelectsRecords: a store that keeps deployments only ignores
// users and clusters in its tree (as an earlier version or a push left
// them), refuses to write them, lists them with Unkept, and never takes a
// snapshot saved by a store that kept every kind (nor the other way
// round).
func TestHoldsSelectsRecords(t *testing.T) {
	dir := t.TempDir()
	ts := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	user := &schema.User{APIVersion: schema.APIVersion, Kind: schema.KindUser, ID: "00000000-0000-7000-8000-aaaaaaaaaaaa",
		Name: "Ada", Email: "ada@example.com", CreatedAt: ts, Keys: []schema.APIKey{{Prefix: "mc_12345", SHA256: strings.Repeat("ab", 32), CreatedAt: ts}}}
	cluster := &schema.Cluster{APIVersion: schema.APIVersion, Kind: schema.KindCluster, ID: testCluster, Name: "prod", CreatedAt: ts}
	all, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, all, func(v *View) (*Commit, error) {
		u, _ := schema.EncodeRecord(user)
		c, _ := schema.EncodeRecord(cluster)
		return &Commit{Author: testAuthor, Message: "operator records\n", Changes: []Change{
			{Path: UserPath(user.ID), Content: u, Value: user}, {Path: ClusterPath(cluster.ID), Content: c, Value: cluster}}}, nil
	})
	mustApply(t, all, createMutation(newDeployment(1, testCluster, "web")))
	if all.UserByKey(user.Keys[0].SHA256) == nil {
		t.Fatal("a store of every kind does not find the user")
	}
	if err := all.Close(); err != nil { // saves a snapshot with the user
		t.Fatal(err)
	}

	check := func(s *Store) {
		t.Helper()
		if s.UserByKey(user.Keys[0].SHA256) != nil {
			t.Error("a deployments store finds a user by key")
		}
		var c *schema.Cluster
		var web *Record
		s.Read(func(v *View) { c, web = v.Cluster(testCluster), v.DeploymentByName(testCluster, "web") })
		if c != nil || web == nil {
			t.Errorf("cluster %v (want none), deployment %v (want it)", c, web)
		}
		unkept, err := s.Unkept()
		if err != nil || len(unkept) != 2 || unkept[0].Path != UserPath(user.ID) || unkept[1].Path != ClusterPath(cluster.ID) {
			t.Errorf("Unkept = %v, %v", unkept, err)
		}
	}
	deployments, err := Open(dir, Options{Holds: HoldsDeployments})
	if err != nil {
		t.Fatal(err)
	}
	check(deployments)
	_, err = deployments.Apply(context.Background(), func(v *View) (*Commit, error) {
		u, _ := schema.EncodeRecord(user)
		return &Commit{Author: testAuthor, Message: "again\n", Changes: []Change{{Path: UserPath("x"), Content: u}}}, nil
	})
	if err == nil || !strings.Contains(err.Error(), "users/x.yaml is not kept in this repository") {
		t.Errorf("writing a user to a deployments store: %v", err)
	}
	if err := deployments.Close(); err != nil { // saves its own snapshot
		t.Fatal(err)
	}
	again, err := Open(dir, Options{Holds: HoldsDeployments})
	if err != nil {
		t.Fatal(err)
	}
	check(again) // from its snapshot
	again.Close()
	allAgain := openStore(t, dir)
	if allAgain.UserByKey(user.Keys[0].SHA256) == nil {
		t.Error("a store of every kind took the deployments store's snapshot and lost the user")
	}
	runGit(t, dir, "fsck", "--strict")
}
