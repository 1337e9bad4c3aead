package schema

import (
	"reflect"
	"strings"
	"testing"
)

func TestRecordsRoundTrip(t *testing.T) {
	c := &Cluster{APIVersion: APIVersion, Kind: KindCluster, ID: testClusterID, Name: "local",
		Kubeconfig: "/etc/mengi/kubeconfig", Provider: "kwok", Region: "local", Domain: "apps.example.com",
		Users: []string{"ana@example.com"}, AllowPrivileged: true, CreatedAt: testCreated}
	u := &User{APIVersion: APIVersion, Kind: KindUser, ID: testUserID, Name: "Ana", Email: "ana@example.com", GitAccess: true,
		CreatedAt: testCreated, Keys: []APIKey{{Prefix: "mc_abcd", SHA256: strings.Repeat("0f", 32), CreatedAt: testCreated}}}
	for _, rec := range []any{c, u} {
		data, err := EncodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := EncodeRecord(rec)
		if string(again) != string(data) {
			t.Error("EncodeRecord is not deterministic")
		}
		back := reflect.New(reflect.TypeOf(rec).Elem()).Interface()
		if err := DecodeRecord(data, back); err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		if !reflect.DeepEqual(back, rec) {
			t.Errorf("round trip:\n got  %s\n want %s", jsonString(back), jsonString(rec))
		}
	}
	data, _ := EncodeRecord(c)
	if !strings.HasPrefix(string(data), "apiVersion: mengi.cloud/v1\nkind: Cluster\nid: ") ||
		!strings.Contains(string(data), "\nallow_privileged: true\ncreated_at: ") {
		t.Errorf("key order:\n%s", data)
	}
}

func TestDecodeRecordRefusesUnknownKeys(t *testing.T) {
	var c Cluster
	err := DecodeRecord([]byte("apiVersion: mengi.cloud/v1\nkind: Cluster\nid: x\nname: y\nkubeconfg: /x\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "kubeconfg") {
		t.Errorf("err = %v", err)
	}
	if err := DecodeRecord([]byte("a: [\n"), &c); err == nil {
		t.Error("bad YAML accepted")
	}
}

func TestClusterAllows(t *testing.T) {
	open := &Cluster{}
	if !open.Allows("anyone@example.com") {
		t.Error("a cluster without users should allow everyone")
	}
	c := &Cluster{Users: []string{"ana@example.com", "bo@example.com"}}
	if !c.Allows("bo@example.com") || c.Allows("eve@example.com") || c.Allows("") {
		t.Error("Allows")
	}
	// Emails compare without regard to case, as the store looks users up.
	if !c.Allows("Ana@Example.COM") || !(&Cluster{Users: []string{"Carol@Example.com"}}).Allows("carol@example.com") {
		t.Error("Allows is case-sensitive")
	}
}
