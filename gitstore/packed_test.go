package gitstore

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/schema"
)

// filled returns a deployment with every field set (found by reflection,
// so a field added to the schema is covered), each to a value of its own.
func filled(t *testing.T, seed int) *schema.Deployment {
	t.Helper()
	var d schema.Deployment
	n := seed
	fill(reflect.ValueOf(&d).Elem(), &n)
	return &d
}

func fill(v reflect.Value, n *int) {
	*n++
	if v.Type() == timeType {
		zones := []*time.Location{time.UTC, time.FixedZone("CET", 3600), time.FixedZone("", -5*3600-30*60)}
		v.Set(reflect.ValueOf(time.Unix(int64(1_700_000_000+*n*3601), int64(*n%3)*123456789).In(zones[*n%len(zones)])))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("value-%d", *n))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n) * -1000)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n) * 1000)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.25)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), n)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(s.Index(0), n)
		fill(s.Index(1), n)
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), n)
		}
	case reflect.Map:
		v.Set(reflect.ValueOf(map[string]any{"health_check_path": "/healthz", "n": float64(*n), "list": []any{"a", true, 2.5}, "nested": map[string]any{"x": nil}}))
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

// TestPackedDeploymentRoundTrips packs deployments with every field set,
// and with the fields packing leaves out (id, user, cluster, name,
// apiVersion, kind) at their usual and unusual values, and checks each
// unpacks to an equal value.
func TestPackedDeploymentRoundTrips(t *testing.T) {
	usual := filled(t, 0)
	usual.APIVersion, usual.Kind = schema.APIVersion, schema.KindDeployment
	elsewhere := filled(t, 100) // cluster and name not those of its path
	plain := newDeployment(3, testCluster, "web")
	for name, d := range map[string]*schema.Deployment{"every field": filled(t, 0), "usual header": usual, "elsewhere": elsewhere, "plain": plain} {
		t.Run(name, func(t *testing.T) {
			p := DeploymentPath(d.Spec.ClusterID, d.Spec.Name)
			if name == "elsewhere" {
				p = DeploymentPath(testCluster, "other")
			}
			packed := packDeployment(d, p)
			got, err := unpackDeployment(packed, p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, d) {
				t.Errorf("unpacked:\n%+v\nwant\n%+v", got, d)
			}
			if packedID(packed) != d.Metadata.ID || packedUserID(packed) != d.Metadata.UserID {
				t.Errorf("front: %q %q", packedID(packed), packedUserID(packed))
			}
		})
	}
}

// TestPackedDeploymentIsSmall keeps the point of packing in view: a
// typical deployment packs to a fraction of its parsed size.
func TestPackedDeploymentIsSmall(t *testing.T) {
	d := newDeployment(3, testCluster, "web")
	if n := len(packDeployment(d, DeploymentPath(testCluster, "web"))); n > 160 {
		t.Errorf("a typical deployment packs to %d bytes", n)
	}
}

// TestDamagedPackedDeploymentFails unpacks every truncation and many
// corruptions of a packed deployment: an error or a value, never a panic,
// and a truncation is always an error.
func TestDamagedPackedDeploymentFails(t *testing.T) {
	d := filled(t, 7)
	p := DeploymentPath(d.Spec.ClusterID, d.Spec.Name)
	packed := packDeployment(d, p)
	for n := range len(packed) {
		if _, err := unpackDeployment(packed[:n], p); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(packed))
		}
	}
	for i := range len(packed) {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := []byte(packed)
			b[i] ^= x
			unpackDeployment(string(b), p) // must not panic
		}
	}
}

// TestRecordGivesBackWhatWasWritten writes deployments through the API's
// path (the parsed value comes with the file) and as raw files, and checks
// each record's deployment encodes to exactly the file in Git.
func TestRecordGivesBackWhatWasWritten(t *testing.T) {
	s := openStore(t, t.TempDir())
	richRepository(t, s)
	n := 0
	s.Read(func(v *View) {
		v.Each(func(r *Record) {
			if !r.HasDeployment() || r.Err() != nil {
				return
			}
			n++
			want, err := s.ReadBlob(r.Blob())
			if err != nil {
				t.Fatal(err)
			}
			got, err := schema.EncodeFile(r.Deployment())
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("%s:\n%s\nin Git:\n%s", r.Path, got, want)
			}
			if r.Deployment() == r.Deployment() {
				t.Errorf("%s: two calls share one value", r.Path)
			}
		})
	})
	if n < 30 {
		t.Fatalf("only %d deployments checked", n)
	}
}

// FuzzUnpackDeployment unpacks arbitrary bytes: an error or a deployment,
// never a panic; and whatever unpacks packs back to the same bytes.
func FuzzUnpackDeployment(f *testing.F) {
	p := DeploymentPath(testCluster, "web")
	f.Add(packDeployment(newDeployment(1, testCluster, "web"), p))
	var d schema.Deployment
	n := 0
	fill(reflect.ValueOf(&d).Elem(), &n)
	f.Add(packDeployment(&d, p))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := unpackDeployment(s, p)
		if err != nil {
			return
		}
		again := packDeployment(d, p)
		back, err := unpackDeployment(again, p)
		if err != nil {
			t.Fatalf("a deployment unpacked from the input does not unpack after packing: %v", err)
		}
		if packDeployment(back, p) != again {
			t.Fatalf("packing is not stable")
		}
	})
}
