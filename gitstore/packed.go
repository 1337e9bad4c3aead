package gitstore

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/mengi-cloud/gitops/schema"
)

// Packed deployments. The index holds every deployment of the repository,
// and a parsed schema.Deployment with its strings, pointers and times
// takes about 1 KB; at 50,000 deployments and more that was most of the
// store's memory. So a record keeps its deployment packed in one string
// (about 150 bytes for a typical one) and Record.Deployment unpacks a
// copy when asked, in about a microsecond; the fields the index looks
// things up by (id, user) sit at the front, readable without unpacking.
//
// Layout: metadata.id and metadata.user_id (uvarint length, bytes each),
// then every field of the Deployment in declaration order, found by
// reflection so that a field added to the schema is packed with no change
// here:
//   - string: uvarint length, bytes; int: varint; uint: uvarint;
//     float: 8 bytes; bool: 1 byte;
//   - pointer: 0 for nil, else 1 and the value; slice: 0 for nil, else
//     uvarint length+1 and the elements; struct: its fields;
//   - time.Time: a zone byte (0 zero time, 1 UTC, 2 Local, 3 fixed zone
//     followed by its name and offset), then varint seconds and uvarint
//     nanoseconds since the Unix epoch (none for the zero time);
//   - anything else (maps, interfaces): 0 for nil, else 1 and its JSON
//     as a string.
//
// Four fields are left empty in the body because they are known
// otherwise: the id and user (in front), and spec.cluster_id and
// spec.name, which a valid deployment's path is made of. apiVersion and
// kind are left empty when they have the usual values.

// packDeployment packs d, a valid deployment whose file is at path p.
func packDeployment(d *schema.Deployment, p string) string {
	c := *d
	c.Metadata.ID, c.Metadata.UserID = "", ""
	if cid, name := deploymentPathParts(p); cid == c.Spec.ClusterID && name == c.Spec.Name {
		c.Spec.ClusterID, c.Spec.Name = "", ""
	}
	if c.APIVersion == schema.APIVersion && c.Kind == schema.KindDeployment {
		c.APIVersion, c.Kind = "", ""
	}
	b := make([]byte, 0, 192)
	b = appendString(b, d.Metadata.ID)
	b = appendString(b, d.Metadata.UserID)
	b = packValue(b, reflect.ValueOf(&c).Elem())
	return string(b)
}

// unpackDeployment gives back the deployment packed as s at path p. The
// strings of the result share s's memory.
func unpackDeployment(s, p string) (*schema.Deployment, error) {
	u := unpacker{s: s}
	var d schema.Deployment
	id, uid := u.string(), u.string()
	u.value(reflect.ValueOf(&d).Elem())
	if u.err == nil && u.off != len(s) {
		u.fail("trailing bytes")
	}
	if u.err != nil {
		return nil, fmt.Errorf("unpack deployment %s: %w", p, u.err)
	}
	d.Metadata.ID, d.Metadata.UserID = id, uid
	if d.Spec.ClusterID == "" && d.Spec.Name == "" {
		d.Spec.ClusterID, d.Spec.Name = deploymentPathParts(p)
	}
	if d.APIVersion == "" && d.Kind == "" {
		d.APIVersion, d.Kind = schema.APIVersion, schema.KindDeployment
	}
	return &d, nil
}

// packedID and packedUserID read the front of a packed deployment.
func packedID(s string) string {
	u := unpacker{s: s}
	return u.string()
}

func packedUserID(s string) string {
	u := unpacker{s: s}
	u.string()
	return u.string()
}

// deploymentPathParts splits clusters/<cluster-id>/<name>.yaml.
func deploymentPathParts(p string) (clusterID, name string) {
	rest := strings.TrimPrefix(p, clustersDir+"/")
	clusterID, file, _ := strings.Cut(rest, "/")
	return clusterID, strings.TrimSuffix(file, ".yaml")
}

// packLayout is a digest of the packed layout (the Deployment type's
// fields, recursively): a snapshot made by a build whose schema differs
// is not read.
var packLayout = sync.OnceValue(func() [sha1.Size]byte {
	var sb strings.Builder
	describeType(&sb, reflect.TypeFor[schema.Deployment](), map[reflect.Type]bool{})
	return sha1.Sum([]byte(sb.String()))
})

func describeType(sb *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	fmt.Fprintf(sb, "%s/%s(", t.String(), t.Kind())
	if !seen[t] {
		seen[t] = true
		switch t.Kind() {
		case reflect.Struct:
			if t != timeType {
				for i := range t.NumField() {
					sb.WriteString(t.Field(i).Name + ":")
					describeType(sb, t.Field(i).Type, seen)
				}
			}
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			describeType(sb, t.Elem(), seen)
		}
	}
	sb.WriteString(")")
}

var timeType = reflect.TypeFor[time.Time]()

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func packValue(b []byte, v reflect.Value) []byte {
	if v.Type() == timeType {
		return packTime(b, v.Interface().(time.Time))
	}
	switch v.Kind() {
	case reflect.String:
		return appendString(b, v.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return binary.AppendVarint(b, v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return binary.AppendUvarint(b, v.Uint())
	case reflect.Float32, reflect.Float64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float()))
	case reflect.Bool:
		if v.Bool() {
			return append(b, 1)
		}
		return append(b, 0)
	case reflect.Pointer:
		if v.IsNil() {
			return append(b, 0)
		}
		return packValue(append(b, 1), v.Elem())
	case reflect.Slice:
		if v.IsNil() {
			return append(b, 0)
		}
		b = binary.AppendUvarint(b, uint64(v.Len())+1)
		for i := range v.Len() {
			b = packValue(b, v.Index(i))
		}
		return b
	case reflect.Struct:
		for i := range v.NumField() {
			b = packValue(b, v.Field(i))
		}
		return b
	}
	// Maps and interfaces (spec.config) as JSON: what parsing the file
	// gives too, since a file is YAML read as JSON.
	if v.IsNil() {
		return append(b, 0)
	}
	j, err := json.Marshal(v.Interface())
	if err != nil {
		// A validated deployment's config came from JSON, so this cannot
		// happen; keep the field out rather than fail the write.
		return append(b, 0)
	}
	return appendString(append(b, 1), string(j))
}

// Zones of a packed time.
const (
	zoneNone = iota
	zoneUTC
	zoneLocal
	zoneFixed
)

func packTime(b []byte, t time.Time) []byte {
	switch {
	case t.IsZero() && t.Location() == time.UTC:
		return append(b, zoneNone)
	case t.Location() == time.UTC:
		b = append(b, zoneUTC)
	case t.Location() == time.Local:
		b = append(b, zoneLocal)
	default:
		name, off := t.Zone()
		b = appendString(append(b, zoneFixed), name)
		b = binary.AppendVarint(b, int64(off))
	}
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// unpacker reads a packed deployment; the first problem stops it.
type unpacker struct {
	s   string
	off int
	err error
}

var errPacked = errors.New("malformed packed deployment")

func (u *unpacker) fail(what string) {
	if u.err == nil {
		u.err = fmt.Errorf("%w: %s at byte %d", errPacked, what, u.off)
	}
	u.off = len(u.s)
}

func (u *unpacker) uvarint() uint64 {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if u.off >= len(u.s) {
			u.fail("short varint")
			return 0
		}
		c := u.s[u.off]
		u.off++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
	u.fail("long varint")
	return 0
}

func (u *unpacker) varint() int64 {
	x := u.uvarint()
	return int64(x>>1) ^ -int64(x&1)
}

func (u *unpacker) byte() byte {
	if u.off >= len(u.s) {
		u.fail("short")
		return 0
	}
	u.off++
	return u.s[u.off-1]
}

func (u *unpacker) string() string {
	n := u.uvarint()
	if n > uint64(len(u.s)-u.off) {
		u.fail("short string")
		return ""
	}
	u.off += int(n)
	return u.s[u.off-int(n) : u.off]
}

func (u *unpacker) value(v reflect.Value) {
	if u.err != nil {
		return
	}
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(u.time()))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(u.string())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(u.varint())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(u.uvarint())
	case reflect.Float32, reflect.Float64:
		if len(u.s)-u.off < 8 {
			u.fail("short float")
			return
		}
		v.SetFloat(math.Float64frombits(binary.LittleEndian.Uint64([]byte(u.s[u.off : u.off+8]))))
		u.off += 8
	case reflect.Bool:
		v.SetBool(u.byte() != 0)
	case reflect.Pointer:
		if u.byte() == 0 {
			return
		}
		p := reflect.New(v.Type().Elem())
		u.value(p.Elem())
		v.Set(p)
	case reflect.Slice:
		n := u.uvarint()
		if n == 0 {
			return
		}
		if n-1 > uint64(len(u.s)-u.off) {
			u.fail("slice length")
			return
		}
		s := reflect.MakeSlice(v.Type(), int(n-1), int(n-1))
		for i := range int(n - 1) {
			u.value(s.Index(i))
		}
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			u.value(v.Field(i))
		}
	default:
		if u.byte() == 0 {
			return
		}
		j := u.string()
		p := reflect.New(v.Type())
		if err := json.Unmarshal([]byte(j), p.Interface()); err != nil {
			u.fail(err.Error())
			return
		}
		v.Set(p.Elem())
	}
}

func (u *unpacker) time() time.Time {
	zone := u.byte()
	var loc *time.Location
	switch zone {
	case zoneNone:
		return time.Time{}
	case zoneUTC:
		loc = time.UTC
	case zoneLocal:
		loc = time.Local
	case zoneFixed:
		name := u.string()
		loc = time.FixedZone(name, int(u.varint()))
	default:
		u.fail("time zone")
		return time.Time{}
	}
	sec, nsec := u.varint(), u.uvarint()
	if nsec >= 1e9 {
		u.fail("nanoseconds")
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).In(loc)
}
